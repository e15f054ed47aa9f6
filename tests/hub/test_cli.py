"""``westtek audit verify``, which the hub package adds to the westtek CLI."""

import json
from pathlib import Path

from westtek_core.cli import main
from westtek_hub import audit
from westtek_hub.audit_anchor import FileAnchor
from westtek_hub.audit_trail import create_key_file
from westtek_hub.db import make_engine, session_factory, upgrade


def audit_log(url: str, entries: int, key_file: Path, anchor: Path) -> None:
    engine = make_engine(url)
    upgrade(engine)
    chain = audit.AuditChain(create_key_file(key_file), FileAnchor(anchor))
    with chain.bind(session_factory(engine))() as session:
        for n in range(entries):
            audit.append(session, "alice", "snapshot.report", f"s{n}")
        session.commit()
    engine.dispose()


def test_an_intact_audit_log_verifies(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    key, anchor = tmp_path / "audit_key", tmp_path / "audit_anchor.json"
    audit_log(url, 3, key, anchor)
    verify = ["audit", "verify", "--db", url, "--key-file", str(key), "--anchor", str(anchor)]
    assert main([*verify, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"verified": True, "checked": 3, "problem": None}


def test_without_the_key_it_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WESTTEK_AUDIT_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    audit_log(url, 1, tmp_path / "audit_key", tmp_path / "audit_anchor.json")
    missing = tmp_path / "elsewhere" / "audit_key"
    assert main(["audit", "verify", "--db", url, "--key-file", str(missing)]) == 1
    assert f"no audit key at {missing}" in capsys.readouterr().err


def test_an_unreadable_database_is_an_error_not_a_traceback(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"  # no schema: no audit table
    create_key_file(tmp_path / "audit_key")
    assert main(["audit", "verify", "--db", url, "--key-file", str(tmp_path / "audit_key")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("westtek: error: cannot read the audit log")
    assert "Traceback" not in err


def test_without_a_database_it_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WESTTEK_HUB_DB_URL", raising=False)
    monkeypatch.setenv("WESTTEK_DATA_DIR", str(tmp_path))
    assert main(["audit", "verify"]) == 1
    assert "no hub registry at" in capsys.readouterr().err
