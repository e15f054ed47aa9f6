"""The server-extension endpoints × who asks × whose server, through the real demo hub.

alice's server (lab vault-13) is reached through the proxy, each caller logged in through
the hub's form as a browser: alice herself, bob (her lab), carol (another lab, which a share
would not change: shares are of snapshots) and the hub admin. JupyterHub's OAuth decides
who reaches a server (``access:servers`` scopes from hub_config's roles): only alice does;
everyone else acts through the hub service, whose own matrix covers who may do what.
(The demo has no lab admins; the hub service's own matrix covers that role.)
"""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import HubProcess, login
from tests.e2e.test_hub_spawn import server_status

pytestmark = pytest.mark.slow

# (method, path under westtek/api/, body): a read, a state change, the knowledge base
ENDPOINTS = [
    ("GET", "status", None),
    ("GET", "snapshots", None),
    ("POST", "snapshots", {"note": "from someone else"}),
    ("GET", "kb/search?q=notebook", None),
    ("PUT", "baseline", {"id": "abcd1234"}),
]
# hub admins act on servers through the hub service (whose role has access:servers), not
# in person: JupyterHub's admin_access stays off, so nobody reads a notebook server's files
# just for being an admin
EXPECTED_REACH = {"alice": True, "bob": False, "carol": False, "overseer": False}


def call(hub: HubProcess, session: requests.Session, method: str, path: str, body) -> int:
    # the lab page completes the OAuth dance (or refuses it) and sets the _xsrf cookie
    session.get(f"{hub.url}/user/alice/lab", timeout=60)
    xsrf = session.cookies.get("_xsrf", path="/user/alice/") or ""
    response = session.request(
        method, f"{hub.url}/user/alice/westtek/api/{path}", json=body,
        headers={"X-XSRFToken": xsrf}, timeout=60, allow_redirects=True,
    )  # fmt: skip
    return response.status_code


def test_only_the_owner_reaches_a_researchers_server(hub):
    owner = login(hub, "alice")
    owner.get(f"{hub.url}/hub/spawn", timeout=120)
    server_status(hub, owner, "alice")
    seen = {}
    for user, reaches in EXPECTED_REACH.items():
        session = owner if user == "alice" else login(hub, user)
        for method, path, body in ENDPOINTS:
            code = call(hub, session, method, path, body)
            seen[user, method, path] = code
            if reaches:
                assert code < 400 or code in (400, 404), (user, method, path, code)
            else:
                assert code == 403, (user, method, path, code, hub.log()[-2000:])
