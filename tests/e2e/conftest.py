"""A real JupyterHub + configurable-http-proxy on loopback, on the demo's hub_config."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef"
DEMO_PASSWORD = "westtek-demo"  # hub_config/jupyterhub_config.py


class HubProcess:
    """One JupyterHub run from a directory: start it, stop it, start it again on the same db.

    ``demo_config`` is the demo's configuration in hub_config/ it runs on (`make demo`'s, or
    `make demo-docker`'s ``jupyterhub_docker_config.py``), with loopback ports of its own.
    """

    def __init__(
        self,
        workdir: Path,
        run_as_uid: int | None = None,
        demo_config: str = "jupyterhub_config.py",
    ) -> None:
        self.workdir = workdir
        self.run_as_uid = run_as_uid
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = workdir / "jupyterhub.log"
        config = workdir / "jupyterhub_e2e_config.py"
        config.write_text(
            f"""c = get_config()
load_subconfig({str(REPO / "hub_config" / demo_config)!r})
c.JupyterHub.bind_url = {self.url!r}
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.JupyterHub.services[0]["url"] = "http://127.0.0.1:{free_port()}"
# the service reaches users' servers through the proxy (the demo's default is port 8000)
c.JupyterHub.services[0]["command"].append("--WestTekHubService.public_url={self.url}")
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}  # answer 202 at once
c.JupyterHub.cleanup_servers = False  # servers outlive the hub, as in production restarts
c.JupyterHub.services.append({{"name": "e2e-admin", "api_token": {ADMIN_TOKEN!r}}})
c.JupyterHub.load_roles.append(  # beside the demo's roles (the westtek service's among them)
    {{"name": "e2e-admin", "scopes": ["admin:users", "admin:servers", "admin:groups"],
     "services": ["e2e-admin"]}}
)
"""
        )
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        command = [sys.executable, "-m", "jupyterhub", "-f", str(self.config)]
        if self.run_as_uid is not None:
            uid = self.run_as_uid
            # This machine's Python lives under /root (mode 700): keep only the right to
            # traverse directories so the unprivileged hub can reach its interpreter.
            command = [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--inh-caps=+dac_read_search",
                "--ambient-caps=+dac_read_search",
                *command,
            ]
            env["HOME"] = str(self.workdir)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.wait_for(f"{self.url}/services/westtek/api/status", timeout)

    def wait_for(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"jupyterhub exited:\n{self.log()}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise AssertionError(f"{url} did not answer in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {ADMIN_TOKEN}"}
        return requests.request(
            method, f"{self.url}/hub/api/{path}", headers=headers, timeout=30, **kwargs
        )

    def api_stream(self, path: str) -> requests.Response:
        headers = {"Authorization": f"token {ADMIN_TOKEN}"}
        return requests.get(f"{self.url}/hub/api/{path}", headers=headers, stream=True, timeout=120)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]

    def kill_user_servers(self) -> None:
        """Servers outlive the hub here by design: end the ones started from this run."""
        for proc in psutil.process_iter(["cmdline", "cwd"]):
            try:
                cwd = proc.info["cwd"] or ""
                if cwd.startswith(str(self.workdir)) and "jupyterhub.singleuser" in " ".join(
                    proc.info["cmdline"] or []
                ):
                    os.killpg(proc.pid, signal.SIGKILL)
            except (psutil.Error, ProcessLookupError):
                continue


@pytest.fixture
def hub(tmp_path):
    hub = HubProcess(tmp_path)
    hub.start()
    yield hub
    hub.stop()
    hub.kill_user_servers()
    print(hub.log())  # pytest shows captured output only when the test failed


def login(hub: HubProcess, username: str, password: str = DEMO_PASSWORD) -> requests.Session:
    """Log in through the hub's login form, as a browser does."""
    session = requests.Session()
    form = session.get(f"{hub.url}/hub/login", timeout=30)
    form.raise_for_status()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    data = {"username": username, "password": password}
    if xsrf:
        data["_xsrf"] = xsrf.group(1)
    response = session.post(
        f"{hub.url}/hub/login?next=", data=data, timeout=120, allow_redirects=False
    )
    assert response.status_code == 302, f"login as {username} failed: {response.status_code}"
    return session


def user_token(hub: HubProcess, name: str) -> str:
    """A JupyterHub API token of ``name``, asked for with the demo password."""
    response = requests.post(
        f"{hub.url}/hub/api/users/{name}/tokens",
        json={"auth": {"username": name, "password": DEMO_PASSWORD}, "note": "e2e"},
        timeout=60,
    )
    assert response.status_code == 201, (name, response.status_code, response.text)
    token: str = response.json()["token"]
    return token
