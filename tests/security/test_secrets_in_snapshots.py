"""Issue 18, item 1: no credential of a researcher's home reaches the snapshot store.

A home directory (the workspace, as on a hub) is planted with every kind of secret the
issue lists: AWS keys in ``~/.aws/config``, ``.s3cfg`` and ``.boto``; gcloud credentials and
a service-account key; Hugging Face, Kaggle, Databricks, gh, rclone and Vault tokens;
``.npmrc``; credentials in ``pip.conf`` and ``.condarc`` URLs; ``prod.env`` and
``secrets.yaml``; an extension-less private key; the notebook signing key; secrets pasted
into a notebook; West Tek's own knowledge-base index, chat history and outbox configured
to live in the home. The Jupyter config holds an ``Authorization`` header and a kernelspec a
password in a database URL. After ``westtek snapshot create`` with default settings, every
byte of the store (each chunk decrypted, each manifest, each raw file) is searched for
every secret value, and the snapshot's report must list each finding.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.core.stress import make_lab
from tests.store_contents import stored_bytes
from westtek_core.agents.conversations import ConversationStore
from westtek_core.capture import REDACTION_MARKER, capture_environment
from westtek_core.kb import KnowledgeBase
from westtek_core.notify.outbox import Outbox
from westtek_core.snapshot import Progress, create_snapshot
from westtek_core.store import Repository

KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDPLANTEDKEYBODY"
SECRETS = {
    "aws-config-key-id": "AKIAWESTTEKPLANTED02",
    "aws-config-secret": "wJalrXUtnFEMIK7MDENGbPxRfiCYPLANTED00002",
    "s3cfg-secret": "s3cfgSecretKeyPLANTED0003abcdefghijklmno",
    "boto-secret": "botoSecretKeyPLANTED0004abcdefghijklmnopq",
    "gcloud-refresh-token": "1//0gcloudRefreshTokenPLANTED0005",
    "service-account-key": KEY_BODY + "SA06",
    "huggingface-token": "hf_huggingFaceTokenPLANTED0007abcdefgh",
    "kaggle-key": "kaggleKeyPLANTED0008abcdef0123456",
    "databricks-token": "dapi0123456789abcdef0123456789abcd09",
    "gh-token": "gho_ghCliTokenPLANTED0010abcdefghijklmnop",
    "rclone-token": "rcloneAccessTokenPLANTED0011",
    "vault-token": "hvs.vaultTokenPLANTED0012abcdefghijkl",
    "npm-token": "npm_npmTokenPLANTED0013abcdefghijklmnopqr",
    "pip-conf-password": "pipIndexPasswordPLANTED0014",
    "condarc-password": "condaChannelPasswordPLANTED0015",
    "prod-env-password": "prodEnvPasswordPLANTED0016",
    "secrets-yaml-key": "secretsYamlApiKeyPLANTED0017",
    "private-key-no-extension": KEY_BODY + "NX18",
    "notebook-signing-key": "notebookSigningKeyPLANTED0019",
    "jupyter-authorization-header": "jupyterBearerPLANTED0020abcdef",
    "kernelspec-url-password": "kernelDbPasswordPLANTED0021",
    "notebook-google-api-key": "AIzaSyPLANTED0022abcdefghijklmnopqrstuv",
    "notebook-stripe-key": "sk_live_PLANTED0023abcdefghijklmn",
    "notebook-bearer": "notebookBearerPLANTED0024abcdef",
    "kb-index-text": "kbIndexedPhrasePLANTED0025",
    "chat-history-text": "chatHistoryPhrasePLANTED0026",
    "outbox-text": "outboxPayloadPhrasePLANTED0027",
    "venv-pip-conf-password": "venvPipIndexPasswordPLANTED0028",
}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def plant_home(home: Path, elsewhere: Path) -> None:
    s = SECRETS
    write(
        home / ".aws" / "config",
        f"[default]\nregion = eu-west-1\naws_access_key_id = {s['aws-config-key-id']}\n"
        f"aws_secret_access_key = {s['aws-config-secret']}\n",
    )
    write(home / ".s3cfg", f"[default]\nsecret_key = {s['s3cfg-secret']}\n")
    write(home / ".boto", f"[Credentials]\naws_secret_access_key = {s['boto-secret']}\n")
    write(
        home / ".config" / "gcloud" / "application_default_credentials.json",
        json.dumps({"type": "authorized_user", "refresh_token": s["gcloud-refresh-token"]}),
    )
    pem = f"-----BEGIN PRIVATE KEY-----\n{s['service-account-key']}\n-----END PRIVATE KEY-----\n"
    write(
        home / "keys" / "vault-13-project-4f2a.json",
        json.dumps({"type": "service_account", "private_key_id": "4f2a", "private_key": pem}),
    )
    write(home / ".huggingface" / "token", s["huggingface-token"])
    write(
        home / ".kaggle" / "kaggle.json", json.dumps({"username": "alice", "key": s["kaggle-key"]})
    )
    write(home / ".databrickscfg", f"[DEFAULT]\ntoken = {s['databricks-token']}\n")
    write(home / ".config" / "gh" / "hosts.yml", f"github.com:\n  oauth_token: {s['gh-token']}\n")
    write(
        home / ".config" / "rclone" / "rclone.conf",
        f'[drive]\ntype = drive\ntoken = {{"access_token":"{s["rclone-token"]}"}}\n',
    )
    write(home / ".vault-token", s["vault-token"])
    write(home / ".npmrc", f"//registry.npmjs.org/:_authToken={s['npm-token']}\n")
    write(
        home / ".config" / "pip" / "pip.conf",
        f"[global]\nindex-url = https://alice:{s['pip-conf-password']}@pypi.lab.example/simple\n",
    )
    write(
        home / ".condarc",
        f"channels:\n  - https://alice:{s['condarc-password']}@conda.lab.example/main\n",
    )
    write(home / "deploy" / "prod.env", f"DB_PASSWORD={s['prod-env-password']}\n")
    write(home / "deploy" / "secrets.yaml", f"api_key: {s['secrets-yaml-key']}\n")
    write(
        home / "deploy" / "deploy_key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        f"{s['private-key-no-extension']}\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    # the researcher's JUPYTER_DATA_DIR in the home, not where the defaults expect it
    write(home / "jupyter-data" / "notebook_secret", s["notebook-signing-key"])
    cell = (
        "import requests\n"
        f'GOOGLE_MAPS = "{s["notebook-google-api-key"]}"\n'
        f'stripe.api_key = "{s["notebook-stripe-key"]}"\n'
        f'requests.get(url, headers={{"Authorization": "Bearer {s["notebook-bearer"]}"}})\n'
    )
    notebook = {
        "cells": [{"cell_type": "code", "metadata": {}, "execution_count": 1,
                   "source": cell, "outputs": []}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    write(home / "analysis" / "maps.ipynb", json.dumps(notebook, indent=1))

    # West Tek's own state, configured to live in the home (c.AgentService.conversations_path…)
    write(elsewhere / "experiments" / "run.md", f"# Run\n{s['kb-index-text']} is the finding.\n")
    kb = KnowledgeBase(home / "lab-kb.sqlite")
    assert kb.ingest_workspace(elsewhere).ingested
    kb.close()
    chat = ConversationStore(home / "westtek-chat.sqlite")
    conversation = chat.create("env", "transfer", "t")
    chat.append(conversation, "env", "user", f"where is {s['chat-history-text']}?")
    chat.close()
    outbox = Outbox(home / "notify" / "outbox.sqlite3")
    outbox.enqueue({"type": "event", "note": s["outbox-text"]}, ["hub"])
    outbox.close()


def plant_jupyter(lab_root: Path, python: Path) -> None:
    s = SECRETS
    # a venv's own pip config ($VIRTUAL_ENV/pip.conf), stored with the environment
    write(
        lab_root / "env" / "pip.conf",
        "[global]\nindex-url = "
        f"https://alice:{s['venv-pip-conf-password']}@pypi.lab.example/simple\n",
    )
    write(
        lab_root / "jupyter-config" / "jupyter_server_config.py",
        "c = get_config()  # noqa\n"
        "c.ServerApp.tornado_settings = {'headers': "
        f"{{'Authorization': 'Bearer {s['jupyter-authorization-header']}'}}}}\n",
    )
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Research",
        "language": "python",
        "env": {"DATABASE_URL": f"postgresql://lab:{s['kernelspec-url-password']}@db/lab"},
    }
    write(lab_root / "jupyter-data" / "kernels" / "research" / "kernel.json", json.dumps(spec))


# path in the snapshot → what was done with it
EXPECTED_FINDINGS = {
    ".aws/config": "redacted",
    ".s3cfg": "excluded",
    ".boto": "excluded",
    ".config/gcloud": "excluded",
    "keys/vault-13-project-4f2a.json": "excluded",
    ".huggingface/token": "excluded",
    ".kaggle/kaggle.json": "excluded",
    ".databrickscfg": "excluded",
    ".config/gh/hosts.yml": "excluded",
    ".config/rclone/rclone.conf": "excluded",
    ".vault-token": "excluded",
    ".npmrc": "redacted",
    ".config/pip/pip.conf": "redacted",
    ".condarc": "redacted",
    "deploy/prod.env": "excluded",
    "deploy/secrets.yaml": "excluded",
    "deploy/deploy_key": "excluded",
    "jupyter-data/notebook_secret": "excluded",
    "analysis/maps.ipynb": "redacted",
    "lab-kb.sqlite": "excluded",
    "westtek-chat.sqlite": "excluded",
    "notify/outbox.sqlite3": "excluded",
    "jupyter_server_config.py": "redacted",
    "kernel.json": "redacted",
}


def test_no_planted_secret_is_in_any_stored_byte(tmp_path: Path):
    lab = make_lab(tmp_path / "lab", data_mib=0, small_files=5)
    plant_home(lab.workspace, tmp_path / "elsewhere")
    plant_jupyter(lab.root, lab.python)
    store = str(tmp_path / "store")

    # default settings: no --include-secrets
    created = lab.cli(*lab.create_args(store))
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)

    hits: dict[str, set[str]] = {}
    for where, blob in stored_bytes(store, tmp_path / "scan-cache"):
        for name, value in SECRETS.items():
            if value.encode() in blob:
                hits.setdefault(name, set()).add(where)
    assert hits == {}, hits

    # the report lists every finding: where, what was done, never the value
    report = {(f["path"], f["action"]) for f in result["secrets"]}
    for path, action in EXPECTED_FINDINGS.items():
        assert (path, action) in report, (path, action, sorted(report))
    assert ("env0", "pip.conf", "redacted") in {
        (f["area"], f["path"], f["action"]) for f in result["secrets"]
    }
    report_text = json.dumps(result["secrets"])
    assert not any(value in report_text for value in SECRETS.values())
    # a secret found inside a file is reported with its line
    npmrc = [f for f in result["secrets"] if f["path"] == ".npmrc"]
    assert npmrc and {f.get("line") for f in npmrc} == {1}, npmrc


def test_a_restore_gives_the_redacted_copy_and_keeps_the_rest(tmp_path: Path):
    lab = make_lab(tmp_path / "lab", data_mib=0, small_files=2)
    plant_home(lab.workspace, tmp_path / "elsewhere")
    store = str(tmp_path / "store")
    created = lab.cli(*lab.create_args(store))
    assert created.returncode == 0, created.stderr
    snapshot = json.loads(created.stdout)["id"]

    # redacted files keep the size of the live file and say what they hold (stored_size),
    # so drift and rollback never take the redacted copy for the live one
    shown = lab.cli("snapshot", "show", snapshot, "--store", store, "--json")
    manifest = json.loads(shown.stdout)
    files = {f["path"]: f for f in manifest["workspace"]["files"]}
    npmrc = files[".npmrc"]
    assert npmrc["size"] == (lab.workspace / ".npmrc").stat().st_size
    assert npmrc["stored_size"] != npmrc["size"]
    assert ".ssh" not in files and "deploy/deploy_key" not in files

    target = tmp_path / "restored"
    restored = lab.cli("snapshot", "restore", snapshot, "--to", str(target), "--store", store)
    assert restored.returncode == 0, restored.stderr
    workspace = target / "workspace"
    assert (workspace / ".npmrc").read_text() == (
        f"//registry.npmjs.org/:_authToken={REDACTION_MARKER}\n"
    )
    aws = (workspace / ".aws" / "config").read_text()
    assert "region = eu-west-1" in aws and SECRETS["aws-config-secret"] not in aws
    notebook = json.loads((workspace / "analysis" / "maps.ipynb").read_text())  # still JSON
    source = notebook["cells"][0]["source"]
    assert "import requests" in source and REDACTION_MARKER in source
    assert not (workspace / "deploy" / "deploy_key").exists()


def test_a_file_changed_since_its_clean_scan_is_scanned_again(tmp_path: Path):
    lab = make_lab(tmp_path / "lab", data_mib=0, small_files=2)
    notes = lab.workspace / "notes" / "cluster.md"
    clean = "Cluster notes: the job runs nightly.\nbilling: " + "x" * 32 + "\n"
    notes.write_text(clean)
    time.sleep(2.1)  # older than the clock tick a clean verdict must be
    store = str(tmp_path / "store")
    first = lab.cli(*lab.create_args(store))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["secrets"] == []  # found clean, and remembered so

    # Given the same size and modification time, only the change time tells the edit
    before = notes.stat()
    secret = "sk_live_PLANTEDSAMESIZE000000001"
    notes.write_text(clean.replace("x" * len(secret), secret))
    os.utime(notes, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert notes.stat().st_size == before.st_size

    second = lab.cli(*lab.create_args(store))
    assert second.returncode == 0, second.stderr
    found = json.loads(second.stdout)["secrets"]
    assert [(f["path"], f["action"], f["line"]) for f in found] == [
        ("notes/cluster.md", "redacted", 2)
    ]
    leaked = [w for w, blob in stored_bytes(store, tmp_path / "c") if secret.encode() in blob]
    assert leaked == []


def test_a_file_changed_between_its_scan_and_its_storing_is_not_stored(tmp_path: Path, monkeypatch):
    lab = make_lab(tmp_path / "lab", data_mib=0, small_files=2)
    for name, value in lab.env.items():  # this process captures as the CLI would in the lab
        monkeypatch.setenv(name, value)
    notes = lab.workspace / "notes" / "late.md"
    notes.write_text("Cluster notes: the job runs nightly.\n")
    secret = "sk_live_PLANTEDLATEWRITE00000001"
    capture = capture_environment([str(lab.python)], lab.workspace)

    def rewrite_once(_: Progress) -> None:
        # the workspace was scanned before anything is stored; its files are stored last
        if secret not in notes.read_text():
            notes.write_text(f"billing: {secret}\n")

    with Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache") as repo:
        result = create_snapshot(repo, capture, progress=rewrite_once)
    assert secret in notes.read_text()  # the file did change mid-snapshot
    assert [s["path"] for s in result.skipped if "changed" in s["reason"]] == ["notes/late.md"]
    assert "notes/late.md" not in {f["path"] for f in result.manifest["workspace"]["files"]}
    stored = stored_bytes(str(tmp_path / "store"), tmp_path / "c")
    assert [where for where, blob in stored if secret.encode() in blob] == []
