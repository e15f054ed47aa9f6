"""The admin panel: its pages for each role, escaping, the drift timeline, sharing,
succession, the audit view, the hub's login, and XSRF on cookie-authenticated API calls.

Seeded through the JSON API (the ``api`` fixture); pages fetched with a user's token, or
with the OAuth cookie a browser would carry. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.web import create_signed_value

from tests.hub.conftest import Service, answer
from westtek_hub.panel import load_cookie_secret
from westtek_hub.panel_timeline import drift_timeline, timeline_chart
from westtek_hub.panel_views import http_url, server_name_of, server_state
from westtek_hub.service import close_hub_http_client

DAY = 86400.0
NOW = time.time()
SNAP = {"alice": "a1" * 32, "bob": "b0" * 32, "carol": "ca" * 32}


def snapshot_report(env: str, snap: str, size: int = 1000, **extra: Any) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(NOW - 3 * DAY, timezone.utc).isoformat()
    return {"id": snap, "environment_id": env, "created_by": env, "timestamp": stamp,
            "size_bytes": size, "checksum": "c0ffee",
            "metadata": {"installed_packages": ["scipy==1.10.1"],
                         "notebooks": [{"path": "fit.ipynb", "imports": ["scipy"]}]}
            } | extra  # fmt: skip


def drift_event(env: str, n: int, status: str, days_ago: float) -> dict[str, Any]:
    changes = [{"kind": "package", "name": "scipy", "change": "upgraded", "before": "1.10.1",
                "after": "1.14.0", "severity": "critical", "affected_notebooks": ["fit.ipynb"],
                "reason": "scipy changed"}]  # fmt: skip
    return {"id": n, "time": NOW - days_ago * DAY, "environment_id": env, "baseline": SNAP[env],
            "status": status, "changes": changes, "resolved": []}  # fmt: skip


async def seed(api) -> None:
    """alice (vault-13, CRITICAL), bob (vault-13, STABLE), carol (vault-101, MINOR)."""
    for user in ("alice", "bob", "carol"):
        response = await api("POST", "snapshots", user, snapshot_report(user, SNAP[user]))
        assert response.code == 201, answer(response)
    for user, n, status, days_ago in [
        ("alice", 1, "MINOR_DRIFT", 2.0),
        ("alice", 2, "CRITICAL_DRIFT", 0.0),
        ("bob", 1, "STABLE", 1.0),
        ("carol", 1, "MINOR_DRIFT", 0.0),
    ]:
        response = await api("POST", "events", user, drift_event(user, n, status, days_ago))
        assert response.code == 201, answer(response)


async def fetch(
    service: Service, path: str, user: str | None = None, **kwargs: Any
) -> HTTPResponse:
    """A panel page (or any path under the service), with ``user``'s token if given."""
    headers = dict(kwargs.pop("headers", {}))
    if user:
        headers["Authorization"] = f"token {user}-token"
    return await AsyncHTTPClient().fetch(
        service.base.removesuffix("api/") + path,
        headers=headers,
        raise_error=False,
        follow_redirects=False,
        **kwargs,
    )


@pytest.fixture
def page(service: Service):
    async def _page(path: str = "", user: str | None = None, **kwargs: Any) -> HTTPResponse:
        return await fetch(service, path, user, **kwargs)

    return _page


def text(response: HTTPResponse) -> str:
    """The page, its runs of whitespace as one space (markup is wrapped freely)."""
    return re.sub(r"\s+", " ", response.body.decode())


def env_rows(body: str) -> dict[str, tuple[str, str]]:
    """``{environment: (drift status, access)}`` of the environments table's rows."""
    pattern = r'<tr data-environment="([^"]*)"\s+data-drift="([^"]*)"\s+data-access="([^"]*)"'
    return {html.unescape(e): (d, a) for e, d, a in re.findall(pattern, body)}


def audit_log(api):
    async def _log() -> list[dict[str, Any]]:
        return list(answer(await api("GET", "audit", "overseer"))["entries"])

    return _log


# -- the environments page ------------------------------------------------------------------


async def test_each_role_sees_its_environments_in_the_hubs_look(api, page):
    await seed(api)
    expected = {
        "alice": {"alice": ("CRITICAL_DRIFT", "own"), "bob": ("STABLE", "lab")},
        "dana": {"alice": ("CRITICAL_DRIFT", "lab-admin"), "bob": ("STABLE", "lab-admin")},
        "carol": {"carol": ("MINOR_DRIFT", "own")},
        "overseer": {
            "alice": ("CRITICAL_DRIFT", "admin"),
            "bob": ("STABLE", "admin"),
            "carol": ("MINOR_DRIFT", "admin"),
        },
        "drifter": {},
    }
    for user, rows in expected.items():
        response = await page("", user)
        assert response.code == 200, text(response)
        body = text(response)
        assert env_rows(body) == rows, user
        # JupyterHub's page: its CSS, nav bar (Home, Token, Services, Logout) and the user
        assert "static/css/style.min.css" in body
        assert 'href="/hub/home"' in body and 'href="/hub/logout"' in body
        assert 'href="/services/westtek/">westtek</a>' in body
        assert f'user: "{user}"' in body and 'xsrf_token: "' in body
        assert ('href="/services/westtek/audit"' in body) == (user == "overseer")
        assert ('href="/hub/admin"' in body) == (user == "overseer")
    drifter = text(await page("", "drifter"))
    assert 'id="westtek-empty"' in drifter
    # lab admins and hub admins see their labs' snapshot storage
    storage = r'<tr data-storage-lab="([^"]*)"'
    assert re.findall(storage, text(await page("", "dana"))) == ["vault-13"]
    assert re.findall(storage, text(await page("", "overseer"))) == ["vault-101", "vault-13"]
    assert re.findall(storage, text(await page("", "alice"))) == []


async def test_rows_show_drift_colours_snapshots_and_the_actions_the_api_allows(api, page):
    await seed(api)
    body = text(await page("", "alice"))
    alice_row = body[body.index('data-environment="alice"') : body.index('data-environment="bob"')]
    assert 'text-bg-danger" data-drift="CRITICAL_DRIFT"' in alice_row
    assert SNAP["alice"][:12] in alice_row and 'data-server="stopped"' in alice_row
    assert 'data-westtek-action="launch" data-environment="alice"' in alice_row
    assert f'data-snapshot="{SNAP["alice"]}">Share' in alice_row
    bob_row = body[body.index('data-environment="bob"') :]
    bob_row = bob_row[: bob_row.index("</tr>")]
    assert 'text-bg-success" data-drift="STABLE"' in bob_row
    # a lab colleague may start a server restored from bob's snapshot, not act on bob's own
    assert f'data-westtek-action="launch" data-snapshot="{SNAP["bob"]}"' in bob_row
    assert 'data-environment="bob">Launch' not in bob_row and "Share" not in bob_row
    # the hub's Services menu and the panel's own assets are served from the service
    for path in ("static/css/style.min.css", "panel-static/panel.js", "panel-static/panel.css"):
        assert (await page(path)).code == 200, path


async def test_filters_by_lab_drift_status_and_researcher(api, page):
    await seed(api)
    cases = {
        "?lab=vault-13": {"alice", "bob"},
        "?drift=CRITICAL_DRIFT": {"alice"},
        "?drift=MINOR_DRIFT": {"carol"},
        "?researcher=carol": {"carol"},
        "?lab=vault-13&drift=STABLE": {"bob"},
        "?lab=vault-101&researcher=alice": set(),
    }
    for query, envs in cases.items():
        body = text(await page(query, "overseer"))
        assert set(env_rows(body)) == envs, query
    # a filter never widens what a user sees
    assert set(env_rows(text(await page("?lab=vault-101", "alice")))) == set()
    bad = await page("?drift=EXPLODED", "overseer")
    assert bad.code == 400 and "drift must be one of" in text(bad)
    assert "<html" in text(bad).lower()


async def test_values_are_escaped_and_only_http_links_are_rendered(api, page):
    evil = 'alice:<img src=x onerror="alert(1)">'
    report = snapshot_report(evil, "e7" * 32)
    assert (await api("POST", "snapshots", "alice", report)).code == 201
    info = {"container_info": {"jupyter_url": "javascript:alert(2)", "task_arn": "<b>arn</b>"}}
    put = await api("PUT", f"environments/{quote(evil, safe='')}/container", "alice", info)
    assert put.code == 200, answer(put)
    for url in ("", "succession", "sharing", "drift"):
        body = text(await page(url, "alice"))
        assert "<img src=x" not in body and "<b>arn" not in body, url
    body = text(await page("", "alice"))
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in body
    assert "javascript:alert" not in body
    assert evil in env_rows(body)
    package = text(await page(f"succession?environment_id={quote(evil, safe='')}", "alice"))
    assert "&lt;img src=x" in package and 'id="westtek-summary"' in package


async def test_a_running_server_can_be_stopped_by_those_who_may_act(api, page, service, fake_hub):
    hub, _ = fake_hub
    hub.running["alice"] = "/user/alice/"  # before the service caches alice's user model
    await seed(api)
    calls: list[tuple[str, str]] = []
    client = service.tornado_app.settings["westtek_hub_client"]
    real_request = client.request

    async def request(method: str, path: str, body: Any = None) -> Any:
        if method == "DELETE":
            calls.append((method, path))
            return None
        return await real_request(method, path, body)

    client.request = request
    body = text(await page("", "alice"))
    assert 'data-server="running"' in body
    assert 'data-westtek-action="stop"' in body and 'data-westtek-action="snapshot"' in body
    assert 'data-westtek-action="stop"' not in text(await page("", "bob"))

    # bob (alice's lab colleague) may not stop it; alice and her lab admin may
    refused = await api("DELETE", "environments/alice/server", "bob")
    assert refused.code == 403 and "may not act on" in answer(refused)["message"]
    assert calls == []
    stopped = await api("DELETE", "environments/alice/server", "dana")
    assert stopped.code == 202, answer(stopped)
    assert answer(stopped) == {"user": "alice", "server_name": "", "environment_id": "alice"}
    assert calls == [("DELETE", "users/alice/server")]
    # a named server, as the spawner reports it
    info = {"container_info": {"jupyter_url": "http://hub.example/user/alice/gpu/"}}
    assert (await api("PUT", "environments/alice/container", "alice", info)).code == 200
    assert (await api("DELETE", "environments/alice/server", "alice")).code == 202
    assert calls[-1] == ("DELETE", "users/alice/servers/gpu")
    steps = [(e["actor"], e["action"], e["outcome"]) for e in await audit_log(api)()]
    for step in [
        ("bob", "server.stop", "denied"),
        ("dana", "server.stop", "ok"),
        ("alice", "server.stop", "ok"),
    ]:
        assert step in steps


# -- drift timeline, sharing, succession, audit -------------------------------------------


async def test_the_drift_timeline_counts_each_labs_events_per_day(api, page):
    await seed(api)
    today = datetime.now(timezone.utc).date()

    def bars(body: str) -> dict[str, Counter[tuple[str, str]]]:
        found: dict[str, Counter[tuple[str, str]]] = {}
        for lab, section in re.findall(r'<section class="mb-4" data-lab="([^"]*)">(.*?)</section>',
                                       body, re.S):  # fmt: skip
            found[lab] = Counter()
            for day, status, n in re.findall(
                r'data-day="([^"]*)"\s+data-status="([^"]*)"\s+data-count="(\d+)"', section
            ):
                found[lab][(day, status)] += int(n)
        return found

    def day(days_ago: float) -> str:
        return datetime.fromtimestamp(NOW - days_ago * DAY, timezone.utc).date().isoformat()

    overseer = text(await page("drift", "overseer"))
    assert "<svg" in overseer and today.isoformat() in overseer
    assert bars(overseer) == {
        "vault-13": Counter(
            {(day(2), "MINOR_DRIFT"): 1, (day(0), "CRITICAL_DRIFT"): 1, (day(1), "STABLE"): 1}
        ),
        "vault-101": Counter({(day(0), "MINOR_DRIFT"): 1}),
    }
    assert set(bars(text(await page("drift", "carol")))) == {"vault-101"}
    assert set(bars(text(await page("drift", "bob")))) == {"vault-13"}
    assert 'id="westtek-empty"' in text(await page("drift", "drifter"))


async def test_the_sharing_page_lists_shares_and_offers_revoking_to_those_who_may(api, page):
    await seed(api)
    share = {"snapshot_id": SNAP["alice"], "to_lab": "vault-101", "permission": "restore"}
    created = answer(await api("POST", "collaboration/share", "alice", share))
    revoke = f'data-westtek-action="revoke" data-share="{created["id"]}"'
    for user, sees, may_revoke in [
        ("alice", True, True),
        ("dana", True, True),
        ("bob", True, False),
        ("carol", True, False),
        ("overseer", True, True),
        ("drifter", False, False),
    ]:
        body = text(await page("sharing", user))
        assert (f'<tr data-share="{created["id"]}">' in body) == sees, user
        assert (revoke in body) == may_revoke, user
    # each user may share the snapshots of what they act on
    assert f'<tr data-snapshot="{SNAP["alice"]}">' in text(await page("sharing", "alice"))
    assert f'<tr data-snapshot="{SNAP["alice"]}">' not in text(await page("sharing", "bob"))
    assert 'id="westtek-share-dialog"' in text(await page("sharing", "bob"))
    # carol now sees alice's environment, and may launch a server restored from the snapshot
    carol = text(await page("", "carol"))
    assert env_rows(carol)["alice"] == ("", "shared-restore")  # a share tells no drift
    assert f'data-westtek-action="launch" data-snapshot="{SNAP["alice"]}"' in carol


async def test_the_succession_wizard_shows_the_package_and_offers_reassigning_to_admins(api, page):
    await seed(api)
    # step 1: the environments to choose from are what the user sees
    chooser = text(await page("succession", "dana"))
    assert re.findall(r'<option value="([^"]*)"', chooser) == ["alice", "bob"]
    assert 'id="westtek-package"' not in chooser
    # steps 2 and 3 for a lab admin: bob's package, and the form to hand it on
    body = text(await page("succession?environment_id=bob", "dana"))
    assert "Environment bob of bob in lab vault-13: 1 snapshot, 1 drift event," in body
    # each table says what its columns are
    for table in ("snapshots", "drift", "installs"):
        assert re.search(f'id="westtek-package-{table}">\\s*<thead>', body), table
    assert "<td>1 change</td>" in body
    assert 'id="westtek-checklist"' in body and "Knowledge Transfer agent" in body
    assert "<code>fit.ipynb</code>" in body and "imports scipy" in body
    assert 'data-westtek-form="reassign"' in body
    assert '<input type="hidden" name="environment_id" value="bob">' in body
    # a researcher reads the package of a lab colleague but may not reassign it
    body = text(await page("succession?environment_id=bob", "alice"))
    assert 'id="westtek-summary"' in body and 'id="westtek-reassign-note"' in body
    assert 'data-westtek-form="reassign"' not in body
    # another lab's environment: as missing as one that is not there, the denial audited
    denied = await page("succession?environment_id=alice", "carol")
    assert denied.code == 404 and "no environment &#39;alice&#39;" in text(denied)
    log = await audit_log(api)()
    assert (log[-1]["actor"], log[-1]["action"], log[-1]["outcome"]) == (
        "carol",
        "transfer.package",
        "denied",
    )
    assert (await page("succession?environment_id=nope", "overseer")).code == 404


async def test_the_audit_view_is_for_hub_admins_with_its_verification_and_exports(api, page):
    await seed(api)
    body = text(await page("audit", "overseer"))
    assert 'id="westtek-chain" data-verified="true"' in body
    assert 'href="/services/westtek/api/audit?format=json"' in body
    assert 'href="/services/westtek/api/audit?format=csv"' in body
    assert body.count("<tr data-seq=") == len(await audit_log(api)())  # reads are not audited
    filtered = text(await page("audit?actor=carol&action=snapshot.report", "overseer"))
    assert filtered.count("<tr data-seq=") == 1
    denied = await page("audit", "dana")
    assert denied.code == 403 and "not a hub admin" in text(denied)
    assert "static/css/style.min.css" in text(denied)
    log = await audit_log(api)()
    assert ("dana", "audit.read", "denied") in [
        (e["actor"], e["action"], e["outcome"]) for e in log
    ]


async def test_without_a_login_the_root_names_the_service_and_pages_refuse(page):
    root = await page("")
    assert root.code == 200 and "West Tek hub service" in text(root)
    for path in ("drift", "sharing", "succession", "audit"):
        assert (await page(path)).code == 403, path
    unknown = await page("", headers={"Authorization": "token nobody"})
    assert unknown.code == 200 and "West Tek hub service" in text(unknown)


# -- the hub's OAuth: a browser's cookie, and XSRF on state changes -----------------------


@pytest.fixture
async def oauth_service(fake_hub, db_url: str, tmp_path: Path, monkeypatch):
    """The service as the hub starts it: with an OAuth client, so browsers log in."""
    monkeypatch.setenv("JUPYTERHUB_CLIENT_ID", "service-westtek")
    running = Service(fake_hub[1], db_url, tmp_path / "hub-data")
    running.start()
    yield running
    running.stop()
    await close_hub_http_client()


def oauth_cookie(service: Service, user: str) -> str:
    """The cookie HubOAuth sets after the hub's OAuth login: the user's token, signed."""
    secret = service.tornado_app.settings["cookie_secret"]
    value = create_signed_value(secret, "service-westtek", f"{user}-token").decode()
    return f"service-westtek={value}"


async def call(service: Service, method: str, path: str, headers: dict[str, str], body: Any = None):
    data = None if body is None else json.dumps(body)
    return await AsyncHTTPClient().fetch(
        service.base + path, method=method, headers=headers, body=data, raise_error=False
    )


async def test_a_browser_without_the_cookie_is_sent_to_the_hubs_login(oauth_service):
    response = await fetch(oauth_service, "drift")
    assert response.code == 302
    location = response.headers["Location"]
    assert location.startswith("/hub/api/oauth2/authorize?")
    assert "client_id=service-westtek" in location and "state=" in location
    assert (await fetch(oauth_service, "")).code == 302


async def test_cookie_requests_that_change_state_need_the_xsrf_token(oauth_service, fake_hub):
    hub, _ = fake_hub
    token = {"Authorization": "token alice-token"}
    report = snapshot_report("alice", SNAP["alice"])
    assert (await call(oauth_service, "POST", "snapshots", token, report)).code == 201
    cookie = oauth_cookie(oauth_service, "alice")
    launch = {"environment_id": "alice"}

    # Reading with the cookie alone works (a page's GET, an export link)
    listed = await call(oauth_service, "GET", "environments", {"Cookie": cookie})
    assert listed.code == 200 and answer(listed)["environments"][0]["id"] == "alice"
    # A cookie-authenticated POST without the XSRF token is refused, and nothing starts
    forged = await call(oauth_service, "POST", "environments/jupyter", {"Cookie": cookie}, launch)
    assert forged.code == 403 and "_xsrf" in answer(forged)["message"]
    wrong = {"Cookie": cookie, "X-XSRFToken": "made-up"}
    assert (await call(oauth_service, "POST", "environments/jupyter", wrong, launch)).code == 403
    assert hub.started == []

    # The panel's page gives the browser the token (cookie and page) that its fetch() sends
    panel = await fetch(oauth_service, "", headers={"Cookie": cookie})
    assert panel.code == 200 and env_rows(text(panel)) == {"alice": ("STABLE", "own")}
    xsrf = re.search(r'xsrf_token: "([^"]+)"', text(panel))
    assert xsrf is not None
    set_cookies = panel.headers.get_list("Set-Cookie")
    xsrf_cookie = next(c.split(";")[0] for c in set_cookies if c.startswith("_xsrf="))
    headers = {"Cookie": f"{cookie}; {xsrf_cookie}", "X-XSRFToken": xsrf.group(1)}
    launched = await call(oauth_service, "POST", "environments/jupyter", headers, launch)
    assert launched.code == 202, answer(launched)
    assert hub.started == [("alice", "", {"westtek_environment": "alice"})]
    # bob's cookie with alice's XSRF token is refused
    bob = {"Cookie": f"{oauth_cookie(oauth_service, 'bob')}; {xsrf_cookie}",
           "X-XSRFToken": xsrf.group(1)}  # fmt: skip
    assert (await call(oauth_service, "POST", "environments/jupyter", bob, launch)).code == 403

    # Token requests (servers, scripts) need no XSRF token
    again = await call(oauth_service, "POST", "environments/jupyter", token, launch)
    assert again.code == 202


async def test_the_oauth_callback_is_routed(oauth_service):
    response = await fetch(oauth_service, "oauth_callback")
    assert response.code == 400  # routed (not 404): HubOAuth refuses a callback without a code


# -- pure pieces -------------------------------------------------------------------------


def test_the_drift_timeline_counts_days_in_utc_within_the_window():
    today = date(2026, 11, 30)
    noon = datetime(2026, 11, 30, 12, tzinfo=timezone.utc).timestamp()
    events = [
        (noon, "CRITICAL_DRIFT", "a"),
        (noon - 0.4 * DAY, "CRITICAL_DRIFT", "a"),
        (noon - 0.6 * DAY, "STABLE", "a"),  # 29 Nov, 21:36
        (noon - 29 * DAY, "MINOR_DRIFT", "b"),  # the first day of the window
        (noon - 30 * DAY, "MINOR_DRIFT", "b"),  # outside it
    ]
    timeline = drift_timeline(events, today)
    assert timeline["a"][-1] == Counter({"CRITICAL_DRIFT": 2})
    assert timeline["a"][-2] == Counter({"STABLE": 1})
    assert timeline["b"][0] == Counter({"MINOR_DRIFT": 1}) and len(timeline["b"]) == 30
    assert sum(sum(c.values()) for c in timeline["b"]) == 1


def test_the_timeline_chart_stacks_stable_under_minor_under_critical():
    days = [Counter() for _ in range(30)]
    days[-1] = Counter({"STABLE": 1, "MINOR_DRIFT": 1, "CRITICAL_DRIFT": 2})
    days[0] = Counter({"STABLE": 2})
    chart = timeline_chart(days, date(2026, 11, 30), width=336, height=130)
    assert chart.maximum == 4 and chart.totals == {
        "STABLE": 3,
        "MINOR_DRIFT": 1,
        "CRITICAL_DRIFT": 2,
    }
    last = [b for b in chart.bars if b.day == "2026-11-30"]
    assert [b.status for b in last] == ["STABLE", "MINOR_DRIFT", "CRITICAL_DRIFT"]
    assert last[0].y + last[0].height == chart.plot_bottom  # on the axis
    assert last[1].y + last[1].height == pytest.approx(last[0].y)  # stacked
    assert last[2].y == pytest.approx(8)  # the tallest day fills the plot
    assert sum(b.height for b in last) == pytest.approx(chart.plot_bottom - 8)
    assert [label for _, label in chart.x_labels] == ["11-02", "11-09", "11-16", "11-23", "11-30"]


@pytest.mark.parametrize(
    ("info", "user", "server"),
    [
        ({"jupyter_url": "https://hub.example/user/alice/"}, "alice", ""),
        ({"jupyter_url": "https://hub.example/prefix/user/alice/gpu/"}, "alice", "gpu"),
        ({"jupyter_url": "http://10.0.0.5:8888/"}, "alice", ""),
        ({"jupyter_url": "https://hub.example/user/bob/gpu/"}, "alice", ""),
        ({"server_name": "big", "jupyter_url": ""}, "alice", "big"),
        ({}, "alice", ""),
    ],
)
def test_the_server_an_environment_runs_in(info, user, server):
    assert server_name_of(info, user) == server


def test_links_and_server_states():
    assert http_url("https://hub.example/user/a/") == "https://hub.example/user/a/"
    assert http_url("/user/a/") == "/user/a/"
    for bad in ("javascript:alert(1)", "//evil.example/", "data:text/html,x", "", None):
        assert http_url(bad) == ""
    assert server_state(None) == "stopped"
    assert server_state({"ready": True}) == "running"
    assert server_state({"ready": False, "pending": "spawn"}) == "starting"
    assert server_state({"ready": True, "pending": "stop"}) == "stopping"


def test_the_cookie_secret_is_made_once_and_private(tmp_path):
    path = tmp_path / "hub" / "cookie_secret"
    first = load_cookie_secret(path)
    assert len(first) == 32 and load_cookie_secret(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
