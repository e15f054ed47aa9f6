"""A hub admin cannot reach a researcher's server, even by clicking "Authorize".

JupyterHub's built-in ``admin`` role holds ``access:servers``: a JupyterHub admin who opens
alice's server is shown the Authorize page and, on clicking it, reaches alice's West Tek
API (rollback included). West Tek's hub admins are therefore not JupyterHub admins: they
are the ``westtek-hub-admins`` group, whose role lists what the panel needs and no
``access:servers`` (issue 18, item 6). Driven through the real demo hub, its login form
and its Authorize page, as a browser would.
"""

from __future__ import annotations

import re

import pytest
import requests

from tests.e2e.conftest import HubProcess, hub, login
from tests.e2e.test_hub_spawn import server_status

__all__ = ["hub"]

pytestmark = pytest.mark.slow


def open_and_authorize(session: requests.Session, url: str) -> requests.Response:
    """GET ``url``; where the hub shows its Authorize page, click "Authorize" and GET again."""
    page = session.get(url, timeout=60)
    if "/hub/api/oauth2/authorize" in page.url and page.status_code == 200:
        form = {"_xsrf": re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)}
        scopes = re.findall(r'<input type="hidden" name="scopes" value="([^"]+)"', page.text)
        session.post(page.url, data={**form, "scopes": scopes}, timeout=60)
        page = session.get(url, timeout=60)
    return page


def open_alices_server_and_authorize(hub: HubProcess, session: requests.Session) -> int:
    """Open alice's lab, authorizing if asked; the West Tek API's answer to a snapshot."""
    open_and_authorize(session, f"{hub.url}/user/alice/lab")
    xsrf = session.cookies.get("_xsrf", path="/user/alice/") or ""
    answer = session.post(
        f"{hub.url}/user/alice/westtek/api/snapshots",
        json={"note": "taken by the hub admin"},
        headers={"X-XSRFToken": xsrf},
        timeout=60,
    )
    return answer.status_code


def test_the_hub_admin_cannot_authorize_into_a_researchers_server(hub):
    alice = login(hub, "alice")
    alice.get(f"{hub.url}/hub/spawn", timeout=120)
    server_status(hub, alice, "alice")

    overseer = login(hub, "overseer")
    assert open_alices_server_and_authorize(hub, overseer) == 403

    # and the hub admin still is one, in the hub service's panel and in JupyterHub's admin page
    audit = open_and_authorize(overseer, f"{hub.url}/services/westtek/audit")
    assert audit.status_code == 200 and "/services/westtek/audit" in audit.url, audit.url
    assert open_and_authorize(bob := login(hub, "bob"), audit.url).status_code == 403, bob
    assert overseer.get(f"{hub.url}/hub/admin", timeout=60).status_code == 200
