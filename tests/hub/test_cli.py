"""``westtek audit verify``, which the hub package adds to the westtek CLI."""

import json

from westtek_core.cli import main
from westtek_hub import audit
from westtek_hub.db import make_engine, session_factory, upgrade


def audit_log(url: str, entries: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        for n in range(entries):
            audit.append(session, "alice", "snapshot.report", f"s{n}")
        session.commit()
    engine.dispose()


def test_an_intact_audit_log_verifies(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    audit_log(url, 3)
    assert main(["audit", "verify", "--db", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"verified": True, "checked": 3, "problem": None}


def test_an_unreadable_database_is_an_error_not_a_traceback(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"  # no schema: no audit table
    assert main(["audit", "verify", "--db", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("westtek: error: cannot read the audit log")
    assert "Traceback" not in err


def test_without_a_database_it_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WESTTEK_HUB_DB_URL", raising=False)
    monkeypatch.setenv("WESTTEK_DATA_DIR", str(tmp_path))
    assert main(["audit", "verify"]) == 1
    assert "no hub registry at" in capsys.readouterr().err
