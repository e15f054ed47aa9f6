"""Issue 18, item 1 (knowledge base): no secret reaches the index, whatever shape it has.

Experiment logs (``.md``, ``.txt``, ``.json``) and a notebook hold a multi-line private key
(also one cut short in a cell's output summary), a Google API key, a Stripe live key, a
bearer ``Authorization`` header, an Azure storage connection string, SendGrid and Twilio
keys and a wandb API key. After ingestion, no search result and no byte of the index's
files (the SQLite database and its WAL) holds any of them; the researcher's words around
them are still found.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from westtek_core.kb import KnowledgeBase

KEY_LINES = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCkbLINEONEPLANTED",
    "q1Jm4mE2hY3Z0xWcE8n7WbXUeZ0dKjq1nq3kzV9yqg7Xb6kLINETWOPLANTED0000",
    "Z3Lr9o2PpY4b8Qe4G8yS0wQf1mJ0u2bq6Yk9o0r5QxLINETHREEPLANTED000000",
]
NOTEBOOK_KEY_LINES = [
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQNOTEBOOKKEYPLANTED00001",
    "AAAAMwAAAAtzc2gtZWQyNTUxOQAAACBTNOTEBOOKKEYPLANTED0000000000000002",
]
SECRETS = {
    **{f"md-private-key-line-{n}": line for n, line in enumerate(KEY_LINES)},
    **{f"notebook-private-key-line-{n}": line for n, line in enumerate(NOTEBOOK_KEY_LINES)},
    "google-api-key": "AIzaSyKBPLANTED0001abcdefghijklmnopqrstu",
    "stripe-live-key": "sk_live_KBPLANTED0002abcdefghijklm",
    "bearer-header": "eyKBbearerPLANTED0003abcdefghijk",
    "azure-account-key": "KBazurePLANTED0004" + "a1B2c3D4e5" * 7 + "==",
    "sendgrid-key": "SG.KBsendgridPLANTED0005a.cdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS",
    "twilio-account-sid": "AC0123456789abcdef0123456789abcd06",
    "twilio-api-key": "SK0123456789abcdef0123456789abcd07",
    "wandb-key-in-login": "0123456789abcdef0123456789abcdef0badc0de",
    "wandb-key-in-env": "fedcba9876543210fedcba9876543210deadbeef",
    "json-token": "jsonRunTokenKBPLANTED0010",
}
KEPT_WORDS = ["bootstrap", "regression", "windturbine"]


def make_sources(root: Path) -> None:
    s = SECRETS
    experiments = root / "experiments"
    experiments.mkdir(parents=True)
    key_block = "\n".join(KEY_LINES)
    (experiments / "cluster-access.md").write_text(
        "# Cluster access\n\nThe bootstrap job signs in with this key:\n\n"
        f"-----BEGIN RSA PRIVATE KEY-----\n{key_block}\n-----END RSA PRIVATE KEY-----\n\n"
        "Then the regression runs.\n"
    )
    (experiments / "services.txt").write_text(
        f"maps key {s['google-api-key']} for the windturbine map\n"
        f"billing: stripe {s['stripe-live-key']}\n"
        f"curl -H 'Authorization: Bearer {s['bearer-header']}' https://api.lab.example\n"
        "DefaultEndpointsProtocol=https;AccountName=lab;"
        f"AccountKey={s['azure-account-key']};EndpointSuffix=core.windows.net\n"
        f"mail via {s['sendgrid-key']}\n"
        f"sms account {s['twilio-account-sid']} key {s['twilio-api-key']}\n"
        f"wandb login {s['wandb-key-in-login']}\n"
        f"export WANDB_API_KEY={s['wandb-key-in-env']}\n"
    )
    (experiments / "run.json").write_text(
        json.dumps({"run": 7, "api": {"token": s["json-token"]}, "model": "windturbine"})
    )
    printed_key = "\n".join(
        ["-----BEGIN OPENSSH PRIVATE KEY-----", *NOTEBOOK_KEY_LINES * 4, "AAAA"]
    )  # longer than the output summary: cut short without its END line
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "Fit the bootstrap model."},
            {"cell_type": "code", "metadata": {}, "execution_count": 1,
             "source": "print(open('/home/alice/.ssh/id_ed25519').read())",
             "outputs": [{"output_type": "stream", "name": "stdout", "text": printed_key}]},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    (root / "access.ipynb").write_text(json.dumps(notebook))


@pytest.fixture
def ingested(tmp_path: Path):
    root = tmp_path / "workspace"
    make_sources(root)
    index = tmp_path / "index" / "lab.sqlite"
    kb = KnowledgeBase(index)
    report = kb.ingest_workspace(root)
    assert not report.failed, report.failed
    assert len(report.ingested) == 4, report.ingested
    yield kb, index.parent
    kb.close()


def test_search_results_hold_no_secret(ingested):
    kb, _ = ingested
    seen = []
    for query in [*KEPT_WORDS, "key", "private key", "stripe", "azure", "wandb", "token", "sms"]:
        seen += kb.search(query, k=20)
    assert seen
    leaked = {name: r.source for r in seen for name, value in SECRETS.items() if value in r.text}
    assert leaked == {}
    for word in KEPT_WORDS:  # the researcher's words around the secrets are still found
        assert any(word in r.text for r in kb.search(word, k=5)), word


def test_index_files_hold_no_secret(ingested):
    kb, index_dir = ingested
    kb.close()  # everything written, the WAL checkpointed
    files = [p for p in index_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in files), files
    leaked = {
        name: str(path)
        for path in files
        for name, value in SECRETS.items()
        if value.encode() in path.read_bytes()
    }
    assert leaked == {}
