"""JupyterHub configuration for the West Tek local demo (`make demo`).

Two labs as JupyterHub groups, an admin, the demo authenticator, the West Tek spawner's
local backend and the West Tek hub service: all on embedded defaults, loopback only.
Run from the directory where the hub should keep its database and the users' homes.
"""

import os
import shutil
import sys
from pathlib import Path

from westtek_core.labs import HUB_ADMINS_GROUP
from westtek_hub.roles import idle_culler, suite_roles

c = get_config()  # noqa: F821 (injected by JupyterHub)

# Labs are JupyterHub groups; the demo's users log in with the shared demo password.
LABS = {"vault-13": ["alice", "bob"], "vault-101": ["carol"]}
# Hub admins are a group with West Tek's hub-admin role, not JupyterHub admins (whose role
# reaches every user's server): see westtek_hub/roles.py.
HUB_ADMINS = ["overseer"]
DEMO_PASSWORD = "westtek-demo"

c.JupyterHub.bind_url = "http://127.0.0.1:8000"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.load_groups = {lab: {"users": members} for lab, members in LABS.items()} | {
    HUB_ADMINS_GROUP: {"users": HUB_ADMINS}
}

c.JupyterHub.authenticator_class = "westtek-demo"
c.Authenticator.allowed_users = {user for members in LABS.values() for user in members} | set(
    HUB_ADMINS
)
c.WestTekDemoAuthenticator.demo_password = DEMO_PASSWORD

c.JupyterHub.spawner_class = "westtek"
c.WestTekSpawner.backend = "local"
# The local backend runs every demo user's server as the hub's own OS user: any user's
# kernel can read the others' files and tokens. The demo's users are one trusting group
# on one machine, so that is accepted here; for isolated users use the docker backend,
# in production the ecs backend (README, "Configuration for IT").
c.LocalBackend.allow_shared_os_user = True
c.WestTekSpawner.lab_groups = list(LABS)  # the hub service is told the same, below
# Each lab keeps its snapshots in its own store, beside the hub's state; the hub service
# copies a snapshot one lab shares into the recipient lab's store before a launch from it.
LAB_STORES = str(Path.cwd() / "westtek-stores" / "{lab_id}")
c.WestTekSpawner.store_template = LAB_STORES
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60

c.JupyterHub.services = [
    {
        "name": "westtek",
        "url": "http://127.0.0.1:10101",
        "command": [
            sys.executable,
            "-m",
            "westtek_hub",
            *(f"--WestTekHubService.lab_groups={lab}" for lab in LABS),
            # the registry lives beside the hub's own state, whoever the hub runs as; so do,
            # outside the registry's database, the audit chain's key (made on first start)
            # and the anchor of its head
            f"--WestTekHubService.data_dir={Path.cwd() / 'westtek-hub'}",
            f"--LabStores.store_template={LAB_STORES}",
        ],
        "display": True,
    }
]
c.JupyterHub.load_roles = suite_roles()
# servers idle for an hour are stopped (each takes its before-stop snapshot first)
_culler, _culler_role = idle_culler(int(os.environ.get("WESTTEK_IDLE_TIMEOUT_SECONDS", "3600")))
c.JupyterHub.services.append(_culler)
c.JupyterHub.load_roles.append(_culler_role)


def _find_proxy() -> str:
    """configurable-http-proxy beside the hub's interpreter (where make installs it), or on PATH."""
    beside = Path(sys.executable).parent / "configurable-http-proxy"
    found = str(beside) if beside.exists() else shutil.which("configurable-http-proxy")
    if not found:
        sys.exit(
            "configurable-http-proxy was not found next to the hub's Python or on PATH: "
            "run `make demo` in the West Tek checkout, or `npm install -g configurable-http-proxy`."
        )
    return found


c.ConfigurableHTTPProxy.command = [_find_proxy()]
