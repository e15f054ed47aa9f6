"""A researcher's browser session on her own server, through the hub's proxy.

What JupyterLab does on her behalf, over the same REST and WebSocket APIs: run a cell in a
kernel, type into a terminal, call West Tek's API. Used by the e2e tests and bench/.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests.e2e.conftest import HubProcess, login, user_token


class Researcher:
    """A logged-in researcher's browser session on her own server, through the proxy."""

    def __init__(self, hub: HubProcess, name: str) -> None:
        self.hub, self.name = hub, name
        self.session = login(hub, name)
        self.base = f"{hub.url}/user/{name}/"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        xsrf = self.session.cookies.get("_xsrf", path=f"/user/{self.name}/") or ""
        return self.session.request(
            method, self.base + path, headers={"X-XSRFToken": xsrf}, timeout=60, **kwargs
        )

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def wait_for_server(self, timeout: float = 180) -> None:
        self.session.get(f"{self.hub.url}/hub/spawn", timeout=120)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.session.get(self.base + "lab", timeout=30)  # OAuth, then the _xsrf cookie
            response = self.request("GET", "westtek/api/status")
            if response.ok and response.headers["Content-Type"].startswith("application/json"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.name}'s server did not answer\n{self.hub.log()}")

    def wait_for_job(self, job: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while job["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.25)
            job = self.json("GET", f"westtek/api/jobs/{job['id']}")
        assert job["state"] == "succeeded", job
        return job

    async def websocket(self, path: str) -> WebSocketClientConnection:
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        url = self.base.replace("http://", "ws://") + path
        return await websocket_connect(HTTPRequest(url, headers={"Cookie": cookies}))

    async def run_cell(self, kernel_id: str, code: str, timeout: float = 120) -> str:
        """Execute ``code`` in the kernel as JupyterLab does; its stdout."""
        channel = await self.websocket(f"api/kernels/{kernel_id}/channels")
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                  "session": uuid.uuid4().hex, "version": "5.3", "date": ""}  # fmt: skip
        content = {"code": code, "silent": False, "store_history": True,
                   "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}  # fmt: skip
        await channel.write_message(json.dumps({
            "header": header, "parent_header": {}, "metadata": {}, "content": content,
            "channel": "shell", "buffers": [],
        }))  # fmt: skip
        output = []
        replied = idle = False
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                raw = await asyncio.wait_for(channel.read_message(), deadline - time.monotonic())
                assert raw is not None, "the kernel's channel closed"
                message = json.loads(raw)
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = message["msg_type"]
                if kind == "stream":
                    output.append(message["content"]["text"])
                elif kind == "error":
                    raise AssertionError("\n".join(message["content"]["traceback"]))
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status" and message["content"]["execution_state"] == "idle":
                    idle = True  # every output of the cell was sent before
                if replied and idle:
                    return "".join(output)
        finally:
            channel.close()
        raise AssertionError(f"the cell did not finish in {timeout}s: {''.join(output)}")

    async def run_in_terminal(self, command: str, timeout: float = 120) -> str:
        """Type ``command`` into a new JupyterLab terminal; what it printed."""
        name = self.json("POST", "api/terminals")["name"]
        terminal = await self.websocket(f"terminals/websocket/{name}")
        done = f"westtek-done-{uuid.uuid4().hex[:8]}"
        await terminal.write_message(json.dumps(["stdin", f"{command}; echo {done}-$?\r"]))
        seen = ""
        finished = re.compile(rf"{done}-(\d+)")  # the typed line echoes `{done}-$?`
        deadline = time.monotonic() + timeout
        try:
            while not finished.search(seen) and time.monotonic() < deadline:
                raw = await asyncio.wait_for(terminal.read_message(), deadline - time.monotonic())
                assert raw is not None, "the terminal closed"
                kind, *rest = json.loads(raw)
                if kind == "stdout":
                    seen += rest[0]
        finally:
            terminal.close()
            self.request("DELETE", f"api/terminals/{name}")
        assert (status := finished.search(seen)) and status.group(1) == "0", seen
        return seen

    def drift_events(self) -> list[dict[str, Any]]:
        return self.json("GET", "westtek/api/drift/events")["events"]

    def wait_for_event(self, package: str, version: str, timeout: float = 30) -> dict[str, Any]:
        """The first drift event in which ``package`` became ``version``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.drift_events():
                if any(c["name"] == package and c["after"] == version for c in event["changes"]):
                    return event
            time.sleep(0.25)
        raise AssertionError(f"no drift event for {package} {version}: {self.drift_events()}")


def service_environments(hub: HubProcess, name: str) -> dict[str, dict[str, Any]]:
    """The hub service's environments as ``name`` sees them (with a token of theirs), by id."""
    response = requests.get(
        f"{hub.url}/services/westtek/api/environments",
        headers={"Authorization": f"token {user_token(hub, name)}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {env["id"]: env for env in response.json()["environments"]}


async def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60) -> None:
    """Poll ``condition`` (in a thread: it may block) until it holds, for ``timeout`` at most."""
    for _ in range(int(timeout / 0.5)):
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"not so after {timeout}s: {what}")
