"""Each lab's automatic-snapshot settings in the hub service: API, isolation, checks, audit.

``GET|PUT labs/{lab}/auto-snapshots``: a lab's members read its settings (their servers'
spawner asks with the server's token), its admins and hub admins change them; a lab admin
of one lab can neither read nor change another's. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from tests.hub.conftest import answer
from tests.hub.test_panel import fetch
from tests.hub.test_panel import text as page_text
from westtek_core.autosnapshot_settings import DEFAULTS
from westtek_hub.db import alembic_config, make_engine, upgrade
from westtek_hub.models import Base

SETTINGS = {
    "enabled": True,
    "settle_seconds": 30,
    "interval_hours": 6.5,
    "retention": {"keep_last": 5, "keep_daily": 3},
}
STORED = {
    "enabled": True,
    "settle_seconds": 30,
    "interval_hours": 6.5,
    "retention": {"keep_last": 5, "keep_daily": 3, "keep_weekly": 0, "keep_monthly": 0},
}
VAULT_13 = "labs/vault-13/auto-snapshots"
VAULT_101 = "labs/vault-101/auto-snapshots"


async def audit_entries(api, action: str) -> list[dict[str, Any]]:
    log = answer(await api("GET", "audit", "overseer"))
    assert log["verified"], log["problem"]
    return [e for e in log["entries"] if e["action"] == action]


async def test_a_lab_that_set_nothing_follows_the_defaults(api):
    # Given vault-13, whose admins set nothing: alice, a researcher of it, reads the
    # defaults as what her servers get, and may not change them.
    response = await api("GET", VAULT_13, "alice")
    assert response.code == 200, answer(response)
    assert answer(response) == {
        "lab_id": "vault-13",
        "settings": {},
        "effective": DEFAULTS.to_json(),
        "defaults": DEFAULTS.to_json(),
        "updated_by": None,
        "updated_at": None,
        "editable": False,
    }


async def test_a_lab_admin_changes_their_labs_settings_and_each_change_is_audited(api):
    # When dana, vault-13's admin, sets its settings,
    response = await api("PUT", VAULT_13, "dana", SETTINGS)
    assert response.code == 200, answer(response)
    # then they are what vault-13's servers get (unset ones: the defaults), for its members,
    seen = answer(await api("GET", VAULT_13, "alice"))
    assert seen["settings"] == STORED
    assert seen["effective"] == STORED and seen["updated_by"] == "dana"
    # and the audit log holds the change, the settings before and after.
    assert [(e["actor"], e["target"], e["lab_id"], e["outcome"], e["detail"])
            for e in await audit_entries(api, "auto_snapshots.update")] == [
        ("dana", "vault-13", "vault-13", "ok", {"old": {}, "new": STORED}),
    ]  # fmt: skip
    # Setting only one thing leaves the rest to the defaults (PUT replaces), audited too.
    response = await api("PUT", VAULT_13, "dana", {"enabled": False, "retention": None})
    assert answer(response)["settings"] == {"enabled": False}
    assert answer(response)["effective"] == DEFAULTS.to_json() | {"enabled": False}
    last = (await audit_entries(api, "auto_snapshots.update"))[-1]
    assert last["detail"] == {"old": STORED, "new": {"enabled": False}}
    assert repr(last["detail"]["old"]["settle_seconds"]) == "30"  # as set, not 30.0
    # A hub admin sets any lab's; an empty body puts the lab back to the defaults.
    assert (await api("PUT", VAULT_101, "overseer", SETTINGS)).code == 200
    assert answer(await api("PUT", VAULT_13, "overseer", {}))["effective"] == DEFAULTS.to_json()


@pytest.mark.parametrize(
    "user, method, path, status",
    [
        ("erin", "GET", VAULT_13, 403),  # a lab admin of vault-101 reading vault-13's
        ("erin", "PUT", VAULT_13, 403),  # … or writing them
        ("dana", "PUT", VAULT_101, 403),  # and the other way round
        ("carol", "GET", VAULT_13, 403),  # a researcher of another lab
        ("alice", "PUT", VAULT_13, 403),  # a researcher of the lab: reads, never writes
        ("drifter", "GET", VAULT_13, 403),  # in no lab at all
        ("erin", "PUT", "labs/vault-13%2F..%2Fvault-101/auto-snapshots", 403),  # not a lab
        ("overseer", "GET", "labs/vault-99/auto-snapshots", 404),  # no such lab, even for admins
        ("overseer", "PUT", "labs/vault-99/auto-snapshots", 404),
    ],
)
async def test_nobody_reads_or_changes_another_labs_settings(api, user, method, path, status):
    # Given vault-13's and vault-101's settings, set by their admins,
    assert (await api("PUT", VAULT_13, "dana", SETTINGS)).code == 200
    assert (await api("PUT", VAULT_101, "erin", {"enabled": False})).code == 200
    before = answer(await api("GET", "audit", "overseer"))["entries"][-1]["seq"]
    # when someone without the right reads or writes them,
    change = {"enabled": False, "settle_seconds": 1} if method == "PUT" else None
    response = await api(method, path, user, change)
    # they are refused and learn nothing of them,
    assert response.code == status, answer(response)
    assert set(answer(response)) == {"message"}
    # nothing changed,
    assert answer(await api("GET", VAULT_13, "overseer"))["settings"] == STORED
    assert answer(await api("GET", VAULT_101, "overseer"))["settings"] == {"enabled": False}
    # and the refusal is in the audit log (a denial for the 403s).
    log = answer(await api("GET", "audit", "overseer"))["entries"]
    refusals = [e for e in log if e["seq"] > before and e["actor"] == user]
    assert [e["outcome"] for e in refusals] == ["denied" if status == 403 else "refused"]


@pytest.mark.parametrize(
    "body, message",
    [
        (
            {"settle_seconds": -1},
            "settle_seconds (the settle time after a change) must be a number of seconds "
            "from 0 to 604800 (7 days)",
        ),
        (
            {"interval_hours": "daily"},
            "interval_hours (the time between scheduled snapshots) must be a number of hours "
            "from 0 to 8784 (366 days)",
        ),
        (
            {"interval_hours": 1e6},
            "interval_hours (the time between scheduled snapshots) must be a number of hours "
            "from 0 to 8784 (366 days)",
        ),
        ({"enabled": "yes"}, "enabled must be true or false"),
        ({"enabled": True, "keep": 3}, "unknown setting keep: use enabled, settle_seconds"),
        ({"retention": {"keep_last": 2.5}}, "retention keep_last must be an integer from 0"),
        ({"retention": {"keep_last": "3"}}, "retention keep_last must be an integer from 0"),
        ({"retention": {"keep_last": True}}, "retention keep_last must be an integer from 0"),
        ({"retention": {"keep_yearly": 1}}, "unknown retention key keep_yearly: use keep_last"),
        ({"retention": {"keep_last": 0}}, "retention must keep some snapshots"),
        ({"retention": [5]}, "retention must be an object with keep_last"),
        ([1, 2], "the body must be a JSON object"),
        (b"{", "the body is not JSON"),
    ],
)
async def test_bad_settings_are_refused_in_one_line_and_nothing_is_written(api, body, message):
    # Given vault-13's settings,
    assert (await api("PUT", VAULT_13, "dana", SETTINGS)).code == 200
    # when its admin sends a bad change (along with good settings),
    if isinstance(body, dict):
        body = {"settle_seconds": 5, **body}
    response = await api("PUT", VAULT_13, "dana", body)
    # it is refused with one line saying what is wrong,
    assert response.code == 400
    refusal = answer(response)["message"]
    assert message in refusal and "\n" not in refusal
    # nothing of it was written (not even the good part), and the refusal is audited.
    after = answer(await api("GET", VAULT_13, "dana"))
    assert after["settings"] == STORED and after["updated_by"] == "dana"
    entries = await audit_entries(api, "auto_snapshots.update")
    assert [e["outcome"] for e in entries] == ["ok", "refused"]


async def test_the_panel_shows_each_labs_settings_with_a_form_for_its_admins(api, service):
    # Given vault-13's settings set by dana,
    assert (await api("PUT", VAULT_13, "dana", SETTINGS)).code == 200
    # the hub admin's page has a form for every lab, saying when changes take effect,
    page = page_text(await fetch(service, "auto-snapshots", "overseer"))
    assert re.findall(r'<section class="card mb-3 westtek-auto-lab" data-lab="([^"]+)"', page) == [
        "vault-101",
        "vault-13",
    ]
    assert "Changes take effect from each server's next start" in page
    lab = page.split('data-lab="vault-13"')[1]
    settle = 'name="settle_seconds" type="number" min="0" max="604800" step="any" value="30"'
    assert f'{settle} placeholder="default: 60"' in lab
    keep = 'type="number" min="0" max="100000" step="1"'
    assert f'name="keep_last" {keep} value="5" placeholder="default: 10"' in lab
    assert f'name="keep_weekly" {keep} value="0" placeholder="default: 4"' in lab
    assert 'data-westtek-action="auto-snapshots-reset"' in lab and "changed by dana" in lab
    # erin (vault-101's admin) sees only her lab; alice sees hers, read only.
    erin = page_text(await fetch(service, "auto-snapshots", "erin"))
    assert 'data-lab="vault-101"' in erin and 'data-lab="vault-13"' not in erin
    alice = page_text(await fetch(service, "auto-snapshots", "alice"))
    assert 'data-lab="vault-13"' in alice and 'data-lab="vault-101"' not in alice
    assert "<fieldset disabled>" in alice and "The lab's admins change these settings" in alice
    assert 'type="submit"' not in alice.split("westtek-auto-intro")[1]


def test_the_migration_adds_the_settings_and_keeps_every_lab_on_the_defaults(db_url):
    # Given a registry at the previous revision that knows a lab,
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0003_snapshot_image_digest")
        with engine.begin() as db:
            db.execute(text("INSERT INTO labs (id, created_at) VALUES ('vault-13', :t)"),
                       {"t": datetime.now(timezone.utc)})  # fmt: skip
        # when it is upgraded, the lab has no settings of its own (it follows the defaults),
        upgrade(engine)
        with engine.connect() as db:
            assert db.execute(text("SELECT count(*) FROM lab_auto_snapshots")).scalar() == 0
            assert db.execute(text("SELECT id FROM labs")).scalars().all() == ["vault-13"]
            # and the schema is exactly what the models describe.
            assert compare_metadata(MigrationContext.configure(db), Base.metadata) == []
        # Downgrading drops the settings again.
        with engine.begin() as db:
            command.downgrade(alembic_config(db), "0003_snapshot_image_digest")
        assert "lab_auto_snapshots" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
