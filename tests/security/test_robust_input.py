"""Robust input: what a hostile client sends gets a 400 that says why, never a 500.

Both APIs read bodies with one strict JSON parser (``westtek_core.request_input``) and
reports with the typed wire models; a row stored before that (or edited in the database)
can no longer break a lab's pages; the audit CSV export is inert in a spreadsheet; and
another lab's environment, snapshot or share is answered exactly as one that does not
exist. The hub service's tests run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from tornado.httpclient import HTTPClientError

from tests.hub.conftest import add_lab, answer
from tests.hub.test_panel import fetch
from tests.hub.test_registry_api import SNAPSHOT, event_report, seed, snapshot_report
from tests.server_ext.conftest import jp_server_config, westtek_traits  # noqa: F401
from westtek_hub.db import make_engine, session_factory
from westtek_hub.models import DriftEvent

NESTED = b"[" * 100_000 + b"]" * 100_000


def with_value(report: dict, key: str, raw: str | bytes) -> bytes:
    """``report`` as JSON with ``key``'s value replaced by the raw text ``raw``."""
    text = json.dumps(report | {key: "@@"}).encode()
    return text.replace(b'"@@"', raw if isinstance(raw, bytes) else raw.encode())


EVENT = event_report("alice")
REPORT = snapshot_report("alice", "0e" * 32)

HOSTILE = {
    # name: (path, body, what the message says)
    "deep-nesting": ("events", with_value(EVENT, "changes", NESTED), "nests deeper"),
    "nan-time": ("events", with_value(EVENT, "time", "NaN"), "NaN is not a number"),
    "infinity-time": ("events", with_value(EVENT, "time", "-Infinity"), "-Infinity"),
    "float-overflow": ("events", with_value(EVENT, "time", "1e400"), "out of range"),
    "huge-size": ("snapshots", with_value(REPORT, "size_bytes", "9" * 30), "64 bits"),
    "int64-overflow": ("snapshots", with_value(REPORT, "size_bytes", str(2**63)), "64 bits"),
    "huge-event-id": ("events", with_value(EVENT, "id", str(10**30)), "64 bits"),
    "far-future-time": ("events", with_value(EVENT, "time", "1e15"), "'time'"),
    "negative-time": ("events", with_value(EVENT, "time", "-5"), "'time'"),
    "bad-iso-timestamp": ("snapshots", with_value(REPORT, "timestamp", '"2026-13-45"'), "ISO"),
    "far-future-epoch": ("snapshots", with_value(REPORT, "timestamp", "1e20"), "'timestamp'"),
    "escaped-surrogate": ("snapshots", with_value(REPORT, "created_by", r'"\ud800x"'), "surrogate"),
    "surrogate-key": ("snapshots", with_value(REPORT, "metadata", r'{"\udc00": 1}'), "surrogate"),
    "raw-surrogate": ("snapshots", with_value(REPORT, "checksum", b'"\xed\xa0\x80"'), "UTF-8"),
    "change-not-an-object": ("events", with_value(EVENT, "changes", '["numpy"]'), "changes.0"),
    "change-bad-severity": (
        "events",
        with_value(
            EVENT,
            "changes",
            '[{"kind": "package", "name": "numpy", "change": "x", "severity": "apocalyptic"}]',
        ),  # fmt: skip
        "changes.0",
    ),
    "overlong-id": ("snapshots", json.dumps(snapshot_report("alice", "f" * 300)).encode(), "'id'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_json_gets_a_400_with_a_message_on_the_hub_api(api, case):
    path, body, says = HOSTILE[case]
    # When alice's token posts the hostile body as a report
    response = await api("POST", path, "alice", body)
    # Then it is a 400 whose one-line message says what is wrong
    assert response.code == 400, (case, response.code, response.body[:300])
    message = answer(response)["message"]
    assert says in message and "\n" not in message, message
    # and nothing was stored: alice's events and environments still list
    assert (await api("GET", "events", "alice")).code == 200
    assert (await api("GET", "environments", "alice")).code == 200


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("events?limit=%C2%B2", "GET", 400),  # "²": str.isdigit() says yes, int() says no
        ("events?limit=99999999999999999999999", "GET", 400),
        ("collaboration/share/99999999999999999999999", "DELETE", 404),
    ],
    ids=["superscript-limit", "huge-limit", "overflowing-share-id"],
)
async def test_overflowing_numbers_in_urls_get_a_4xx(api, path, method, status):
    await seed(api)
    response = await api(method, path, "dana")
    assert response.code == status, response.body[:300]
    assert answer(response)["message"]


def store_damaged_event(db_url: str) -> None:
    """A drift event as a hub that did not validate reports might have stored it."""
    damaged = event_report("alice", 7) | {
        "time": 1e300,
        "changes": ["numpy", {"name": 5}, {"kind": "package", "name": "scipy",
                    "change": "upgraded", "before": "1.10", "after": "1.11", "severity": "minor",
                    "affected_notebooks": [], "reason": "scipy upgraded"}],
        "resolved": "everything",
    }  # fmt: skip
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        session.add(DriftEvent(environment_id="alice", reported_by="alice", event_key="7",
                               time=1e300, status="CRITICAL_DRIFT", body=damaged))  # fmt: skip
        session.commit()
    engine.dispose()


async def test_a_damaged_stored_event_breaks_no_page(api, service, db_url):
    # Given alice's environment with a stored event whose time and changes are garbage
    await seed(api)
    store_damaged_event(db_url)
    # Then her lab's events list, showing what is valid and saying the rest is unreadable
    response = await api("GET", "events?environment_id=alice", "bob")
    assert response.code == 200, response.body[:300]
    damaged = [e for e in answer(response)["events"] if e.get("unreadable")]
    assert len(damaged) == 1
    assert damaged[0]["time"] is None and damaged[0]["status"] == "CRITICAL_DRIFT"
    assert [c["name"] for c in damaged[0]["changes"]] == ["scipy"]
    assert damaged[0]["resolved"] == []
    # and the transfer package, the succession page and the drift page all render
    package = await api("GET", "knowledge/transfer?environment_id=alice", "dana")
    assert package.code == 200, package.body[:300]
    assert {i["package"] for i in answer(package)["install_history"]} == {"scipy"}
    for path in ("succession?environment_id=alice", "drift"):
        page = await fetch(service, path, "dana")
        assert page.code == 200, (path, page.body[:300])


async def test_the_audit_csv_export_is_inert_in_a_spreadsheet(api):
    # Given refusals audited with targets a spreadsheet would run as formulas
    for target in ("=1+2", "+cmd", "@SUM(A1)", "-2+3"):
        response = await api("GET", f"environments/{target}/drift", "carol")
        assert response.code == 404
    # When a hub admin exports the log as CSV
    response = await api("GET", "audit?format=csv", "overseer")
    assert response.code == 200
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    # Then every cell that would start a formula starts with a quote instead
    targets = {row["target"] for row in rows}
    assert {"'=1+2", "'+cmd", "'@SUM(A1)", "'-2+3"} <= targets, targets
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row


async def test_another_labs_ids_are_answered_as_missing(api, db_url):
    # Given alice's environment and snapshot in vault-13, shared with a third lab
    await seed(api)
    add_lab(db_url, "vault-8")
    share = {"snapshot_id": SNAPSHOT, "to_lab": "vault-8", "permission": "read"}
    mine = await api("POST", "collaboration/share", "dana", share)
    assert mine.code == 201
    share_id = answer(mine)["id"]
    # When carol (vault-101) probes alice's ids, and ids that exist nowhere
    probes = {
        "environment": (("GET", "environments/alice/drift", None),
                        ("GET", "environments/nobody/drift", None)),
        "transfer": (("GET", "knowledge/transfer?environment_id=alice", None),
                     ("GET", "knowledge/transfer?environment_id=nobody", None)),
        "launch": (("POST", "environments/jupyter", {"environment_id": "alice"}),
                   ("POST", "environments/jupyter", {"environment_id": "nobody"})),
        "snapshot": (("POST", "environments/jupyter", {"snapshot_id": "b0" * 32}),
                     ("POST", "environments/jupyter", {"snapshot_id": "9f" * 32})),
        "share": (("DELETE", f"collaboration/share/{share_id}", None),
                  ("DELETE", f"collaboration/share/{share_id + 1000}", None)),
    }  # fmt: skip
    for what, (existing, missing) in probes.items():
        seen = await api(existing[0], existing[1], "carol", existing[2])
        unseen = await api(missing[0], missing[1], "carol", missing[2])
        # Then both answers are the same 404, differing only by the id asked for
        assert seen.code == unseen.code == 404, (what, seen.code, unseen.code)
        told, untold = answer(seen)["message"], answer(unseen)["message"]
        asked = {"alice", "b0" * 32, str(share_id)}
        for word in asked:
            told = told.replace(word, "<id>")
        for word in ("nobody", "9f" * 32, str(share_id + 1000)):
            untold = untold.replace(word, "<id>")
        assert told == untold, (what, told, untold)
        assert "vault-13" not in told and "bob" not in told
    # and a report for alice's id names neither her lab nor who holds it
    squat = await api("POST", "snapshots", "carol", snapshot_report("alice", "cc" * 32))
    assert squat.code == 403 and "vault-13" not in answer(squat)["message"]
    # while every probe is audited as denied
    log = answer(await api("GET", "audit", "overseer"))["entries"]
    assert sum(e["actor"] == "carol" and e["outcome"] == "denied" for e in log) >= 5


# -- the researcher's server extension -------------------------------------------------


async def post_raw(jp_fetch, path: str, body: bytes) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("westtek", "api", path, method="POST", body=body)
    return raised.value.code, json.loads(raised.value.response.body)["message"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"note": ' + NESTED + b"}", "nests deeper"),
        (b'{"note": "x", "labels": {"a": NaN}}', "NaN"),
        (b'{"note": "\\ud800"}', "surrogate"),
        (b'{"note": "\xed\xa0\x80"}', "UTF-8"),
        (b'{"note": "x", "labels": {"a": ' + b"9" * 5000 + b"}}", "64 bits"),
    ],
    ids=["deep-nesting", "nan", "escaped-surrogate", "raw-surrogate", "huge-number"],
)
async def test_hostile_json_gets_a_400_with_a_message_on_the_server_api(jp_fetch, body, says):
    code, message = await post_raw(jp_fetch, "snapshots", body)
    assert code == 400 and says in message and "\n" not in message, (code, message)


@pytest.mark.parametrize(
    "params",
    [{"since": "99999999999999999999999"}, {"limit": "²"}, {"days": "-1"}],
    ids=["overflowing-since", "superscript-limit", "negative-days"],
)
async def test_overflowing_query_numbers_get_a_400_on_the_server_api(jp_fetch, params):
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("westtek", "api", "drift", "events", params=params)
    assert raised.value.code == 400
    assert "must be an integer" in json.loads(raised.value.response.body)["message"]
