"""XSRF: a browser's cookie alone never changes state through the researcher API.

A page on another origin can make the researcher's browser send the Jupyter login cookie,
but it cannot read the ``_xsrf`` cookie to echo it. So every route and verb that changes
state (POST, PUT, DELETE) must answer 403 to a cookie-authenticated request without the
``X-XSRFToken`` header (or with a wrong one), and must accept the same request with it.
Reads (GET) need the cookie only. Routes come from the handlers' route table, so a new
route is covered when it is added.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie

import pytest
from tornado.httpclient import HTTPClientError

from tests.server_ext.test_schemathesis import westtek_traits  # noqa: F401 (a tiny venv)
from westtek_server_ext.handlers import handler_routes
from westtek_server_ext.openapi import path_template

CHANGING = ("post", "put", "delete", "patch")
ROUTES = sorted(
    (verb.upper(), path_template(pattern).removeprefix("/westtek/api/"))
    for pattern, handler in handler_routes()
    for verb in handler.operations
    if verb in CHANGING
)
IDS = {
    "snapshot_id": "abcd1234",
    "other_id": "abcd5678",
    "job_id": "0123456789abcdef",
    "conversation_id": "0" * 32,
}
BODIES = {
    "snapshots": {"note": "xsrf"},
    "snapshots/{snapshot_id}/restore": {"target": "restored"},
    "baseline": {"id": "abcd1234"},
    "rollback": {"to": "abcd1234"},
    "chat": {"agent": "transfer", "question": "?"},
}


@pytest.fixture
async def browser(jp_fetch, jp_serverapp):
    """Log in as a browser does (the token once, in the URL); return its cookie header."""
    token = jp_serverapp.identity_provider.token
    response = await jp_fetch(
        "login", params={"token": token}, headers={"Authorization": ""}, follow_redirects=False,
        raise_error=False,
    )  # fmt: skip
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        jar.load(header)
    cookie = {"Authorization": "", "Cookie": "; ".join(f"{k}={v.value}" for k, v in jar.items())}
    page = await jp_fetch("westtek", "api", "status", headers=cookie)
    for header in page.headers.get_list("Set-Cookie"):
        jar.load(header)
    cookies = {k: v.value for k, v in jar.items()}
    assert any(k.startswith("username-") for k in cookies), cookies
    if "_xsrf" not in cookies:  # the API sets it on first use; the lab page always does
        lab = await jp_fetch(
            "tree", headers={"Authorization": "", "Cookie": "; ".join(
                f"{k}={v}" for k, v in cookies.items())}, raise_error=False,
        )  # fmt: skip
        for header in lab.headers.get_list("Set-Cookie"):
            jar.load(header)
        cookies = {k: v.value for k, v in jar.items()}
    return cookies


async def send(jp_fetch, method: str, path: str, cookies: dict[str, str], xsrf: str | None):
    headers = {"Authorization": "", "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    if xsrf is not None:
        headers["X-XSRFToken"] = xsrf
    parts = path.format(**IDS).split("/")
    body = None if method == "GET" else json.dumps(BODIES.get(path, {}))
    try:
        response = await jp_fetch("westtek", "api", *parts, method=method, body=body,
                                  headers=headers)  # fmt: skip
        return response.code, response.body
    except HTTPClientError as e:
        return e.code, e.response.body if e.response else b""


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_cookie_without_the_xsrf_token_cannot_change_state(jp_fetch, browser, method, path):
    assert ROUTES, "no state-changing route found"
    for xsrf in (None, "forged-by-another-origin"):
        code, body = await send(jp_fetch, method, path, browser, xsrf)
        assert code == 403, (method, path, xsrf, code, body[:300])
        assert b"XSRF" in body or b"xsrf" in body, body[:300]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_the_same_request_with_the_xsrf_token_gets_through(jp_fetch, browser, method, path):
    # (what it answers depends on the route: no such snapshot, a job started… never 403)
    code, body = await send(jp_fetch, method, path, browser, browser["_xsrf"])
    assert code != 403 and code < 500, (method, path, code, body[:300])


async def test_reads_need_the_cookie_only(jp_fetch, browser):
    code, _ = await send(jp_fetch, "GET", "status", browser, None)
    assert code == 200
