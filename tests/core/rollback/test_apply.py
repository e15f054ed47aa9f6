"""Carrying out steps: redacted config files get the live secrets back when written."""

from __future__ import annotations

from westtek_core.capture.secret_rules import redact_config
from westtek_core.rollback.apply import with_live_secrets


def test_redacted_config_gets_the_live_secrets_back():
    stored = (
        b"c = get_config()\nc.ServerApp.token = '<redacted-by-westtek>'\nc.ServerApp.port = 1\n"
    )
    live = b"c = get_config()\nc.ServerApp.token = 'tok'\nc.ServerApp.port = 2\nc.X.y = 3\n"
    assert with_live_secrets("jupyter_server_config.py", stored, live) == stored.replace(
        b"'<redacted-by-westtek>'", b"'tok'"
    )
    stored_json = b'{\n "env": {\n  "API_TOKEN": "<redacted-by-westtek>"\n },\n "x": 1\n}\n'
    live_json = b'{"env": {"API_TOKEN": "s3cr\xc3\xa9t"}, "x": 2}'
    assert with_live_secrets("kernel.json", stored_json, live_json) == (
        b'{\n "env": {\n  "API_TOKEN": "s3cr\xc3\xa9t"\n },\n "x": 1\n}\n'
    )
    # without a live value the marker stays (the caller notes it)
    assert with_live_secrets("kernel.json", stored_json, b"{}") == stored_json


def test_every_setting_redaction_took_comes_back_in_place():
    # Given a config whose secrets the snapshot redacted: annotated, repeated, in a dict
    name = "jupyter_server_config.py"
    live = (
        b"c = get_config()\n"
        b"c.ServerApp.token: str = 'tok'\n"
        b"c.Spawner.environment = {'API_TOKEN': 'k1', 'LANG': 'C'}\n"
        b"c.ServerApp.password = 'p1'\n"
        b"c.ServerApp.password = 'p2'\n"
        b"c.ServerApp.port = 1\n"
    )
    stored, redactions = redact_config(name, live)
    assert len(redactions) == stored.count(b"'<redacted-by-westtek>'") == 4
    # When the live file has changed since, in a setting that is no secret
    changed = live.replace(b"port = 1", b"port = 2")
    # Then the stored file is written with each secret of the live one back where it was
    assert with_live_secrets(name, stored, changed) == live
