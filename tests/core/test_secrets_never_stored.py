"""Secrets planted in a workspace and Jupyter config never reach the store or the knowledge base.

With default settings, ``westtek snapshot create`` then ``westtek kb ingest`` run over a lab
holding AWS credentials (``.aws/credentials``, ``.env``, a kernelspec's ``env``), Jupyter
tokens and passwords (``jupyter_server_config.py`` and ``.json``), ``.netrc`` and
``.env.local``, and a notebook that pastes some of them into code and output. Then every
stored byte is searched for every secret: each chunk of the store decompressed (and
decrypted) through the Repository API, every manifest, the raw store files, and every file
West Tek keeps in its data and cache directories (the knowledge base's SQLite files, the
stat cache, the event log). The notebook is stored with the pasted values redacted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.stress import make_lab
from tests.store_contents import stored_bytes

SECRETS = {
    "aws-access-key-id": "AKIAWESTTEKPLANTED01",
    "aws-secret-in-credentials": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTED0001",
    "aws-secret-in-dotenv": "dotenvSecretKeyPLANTED0002abcdefghijklmnop",
    "aws-secret-in-kernelspec": "kernelEnvSecretPLANTED0003abcdefghijklmno",
    "dotenv-local-password": "dotenvLocalPLANTED0004",
    "jupyter-token-py": "c0ffeeTokenPLANTED0005",
    "jupyter-token-json": "jsonTokenPLANTED0006",
    "jupyter-password-hash": "argon2:$argon2id$v=19$m=10240,t=10,p=8$PLANTED0007",
    "netrc-password": "netrcPasswordPLANTED0008",
    "notebook-environ-secret": "nbEnvironSecretPLANTED0009abcdefghijklmnop",
    "notebook-output-netrc": "outputNetrcPLANTED0010",
}


def plant(lab_root: Path, workspace: Path, python: Path) -> None:
    s = SECRETS
    (workspace / ".aws").mkdir()
    (workspace / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = {s['aws-access-key-id']}\n"
        f"aws_secret_access_key = {s['aws-secret-in-credentials']}\n"
    )
    (workspace / ".env").write_text(f"AWS_SECRET_ACCESS_KEY={s['aws-secret-in-dotenv']}\n")
    (workspace / ".env.local").write_text(f"DB_PASSWORD={s['dotenv-local-password']}\n")
    (workspace / ".netrc").write_text(
        f"machine data.lab.example login alice password {s['netrc-password']}\n"
    )
    config = lab_root / "jupyter-config"
    (config / "jupyter_server_config.py").write_text(
        f"c = get_config()\nc.ServerApp.token = '{s['jupyter-token-py']}'\n"
        f"c.PasswordIdentityProvider.hashed_password = '{s['jupyter-password-hash']}'\n"
        "c.ServerApp.port = 8899\n"
    )
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"IdentityProvider": {"token": s["jupyter-token-json"]}})
    )
    kernel = lab_root / "jupyter-data" / "kernels" / "research"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Research",
                "language": "python",
                "env": {"AWS_SECRET_ACCESS_KEY": s["aws-secret-in-kernelspec"]},
            }
        )
    )
    pasted = f'os.environ["AWS_SECRET_ACCESS_KEY"] = "{s["notebook-environ-secret"]}"\n'
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "execution_count": 1,
             "source": "import os, boto3\n" + pasted + "!cat ~/.netrc",
             "outputs": [{"output_type": "stream", "name": "stdout",
                          "text": "machine data.lab.example login alice password "
                                  f"{s['notebook-output-netrc']}\n"}]},
        ],
        "metadata": {"kernelspec": {"name": "research", "display_name": "Research"}},
        "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    (workspace / "credentials-demo.ipynb").write_text(json.dumps(notebook))


def found_in(blob: bytes, where: str, hits: dict[str, set[str]]) -> None:
    for name, value in SECRETS.items():
        if value.encode() in blob:
            hits.setdefault(name, set()).add(where)


@pytest.mark.slow
def test_planted_secrets_are_in_no_stored_byte(tmp_path: Path):
    lab = make_lab(tmp_path / "lab", data_mib=0, small_files=5)
    plant(lab.root, lab.workspace, lab.python)
    store = str(tmp_path / "store")

    # default settings: no --include-secrets, the default knowledge-base index
    created = lab.cli(*lab.create_args(store))
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    ingested = lab.cli("kb", "ingest", str(lab.workspace), "--store", store, "--json")
    assert ingested.returncode == 0, ingested.stderr
    assert "credentials-demo.ipynb" in json.loads(ingested.stdout)["ingested"]

    store_hits: dict[str, set[str]] = {}
    kb_hits: dict[str, set[str]] = {}
    for where, blob in stored_bytes(store, tmp_path / "scan-cache"):
        found_in(blob, where, store_hits)
    # and everything West Tek keeps in its own directories
    kb_files = list(Path(lab.env["XDG_DATA_HOME"]).rglob("*"))
    assert any(p.suffix == ".sqlite" and "kb" in p.parts for p in kb_files), kb_files
    for root in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "HOME"):
        for path in Path(lab.env[root]).rglob("*"):
            if path.is_file():
                found_in(path.read_bytes(), str(path), kb_hits)

    assert store_hits == {}, store_hits
    assert kb_hits == {}, kb_hits
    # and the snapshot says what it left out or redacted
    secrets = {(s["path"], s["action"]) for s in result["secrets"]}
    for expected in [
        (".env", "excluded"),
        (".env.local", "excluded"),
        (".netrc", "excluded"),
        (".aws/credentials", "excluded"),
        ("jupyter_server_config.py", "redacted"),
        ("jupyter_server_config.json", "redacted"),
        ("kernel.json", "redacted"),
        ("credentials-demo.ipynb", "redacted"),  # the values pasted into it
    ]:
        assert expected in secrets, (expected, secrets)
