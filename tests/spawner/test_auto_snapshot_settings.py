"""A lab's automatic-snapshot settings reach its servers as the server extension's traits.

A lab admin sets them in the real hub service (tests/hub's, on SQLite, against its fake
hub API); the spawner asks for them at each start with the server's token and gives them
to the server as variables, which ``WestTekExtension``'s traits default from. Without the
hub service the server starts all the same, with the defaults.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub

from tests.conftest import free_port
from tests.hub.conftest import api, fake_hub, lab_stores, quotas, service  # noqa: F401
from tests.spawner.conftest import TINY_SERVER, make_user
from westtek_core.autosnapshot_settings import DEFAULTS, ENVIRONMENT
from westtek_server_ext.app import WestTekExtension
from westtek_spawner import WestTekSpawner

TRAITS = {
    "enabled": "auto_snapshots",
    "settle_seconds": "auto_snapshot_settle_seconds",
    "interval_hours": "auto_snapshot_interval_hours",
    "retention": "auto_snapshot_retention",
}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite: the registry's PostgreSQL side is tests/hub's."""
    return f"sqlite:///{tmp_path / 'registry.sqlite'}"


def local_spawner(tmp_path: Path, hub_service_url: str) -> WestTekSpawner:
    """alice's spawner (lab vault-13) on the local backend, running a tiny HTTP server."""
    spawner = WestTekSpawner(
        user=make_user("alice"),
        orm_spawner=SimpleNamespace(name="", display_name="", server=None),
        hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
        api_token="alice-token",  # the fake hub's token of alice: her server's
        oauth_client_id="jupyterhub-user-alice",
        cmd=[sys.executable, "-c", TINY_SERVER],
        lab_groups=["vault-13", "vault-101"],
        hub_service_base_url=hub_service_url,
    )
    spawner.config.LocalBackend.home_dir_template = str(tmp_path / "homes" / "{username}")
    spawner.config.LocalBackend.state_dir_template = str(tmp_path / "state" / "{username}")
    return spawner


async def server_environment(spawner: WestTekSpawner, tmp_path: Path) -> dict[str, str]:
    """Start the server, and the environment it was started with (it writes it down)."""
    await spawner.start()
    try:
        written = tmp_path / "homes" / "alice" / "env-was.json"
        for _ in range(100):
            if written.exists() and written.stat().st_size:
                return dict(json.loads(written.read_text()))
            await asyncio.sleep(0.05)
        raise AssertionError("the server wrote no environment")
    finally:
        await spawner.stop(now=True)


def server_traits(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict:
    """The automatic-snapshot traits of a server extension under ``environment``."""
    for variable in ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)
        if variable in environment:
            monkeypatch.setenv(variable, environment[variable])
    extension = WestTekExtension()
    return {name: getattr(extension, trait) for name, trait in TRAITS.items()}


async def test_a_labs_settings_arrive_as_its_servers_traits(api, service, tmp_path, monkeypatch):  # noqa: F811
    # Given vault-13's admin turned automatic snapshots to every 2 hours, keeping 3,
    change = {"interval_hours": 2, "retention": {"keep_last": 3}}
    assert (await api("PUT", "labs/vault-13/auto-snapshots", "dana", change)).code == 200
    # when alice's server starts,
    hub_url = service.base.removesuffix("services/westtek/api/")
    environment = await server_environment(local_spawner(tmp_path, hub_url), tmp_path)
    # it is given what the lab set, and nothing for what it left to the defaults,
    given = {name: value for name, value in environment.items() if name in ENVIRONMENT.values()}
    assert given == {
        "WESTTEK_AUTO_SNAPSHOT_INTERVAL_HOURS": "2",  # as set, not 2.0
        "WESTTEK_AUTO_SNAPSHOT_RETENTION": json.dumps(
            {"keep_last": 3, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}
        ),
    }
    # and its extension's traits are the lab's settings, the defaults for the rest.
    assert server_traits(environment, monkeypatch) == DEFAULTS.to_json() | {
        "interval_hours": 2.0,
        "retention": {"keep_last": 3, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0},
    }
    # Turned off by the lab, the next start's server takes no automatic snapshots.
    assert (await api("PUT", "labs/vault-13/auto-snapshots", "dana", {"enabled": False})).code
    environment = await server_environment(local_spawner(tmp_path, hub_url), tmp_path)
    assert server_traits(environment, monkeypatch) == DEFAULTS.to_json() | {"enabled": False}


async def test_without_the_hub_service_the_server_starts_with_the_defaults(
    tmp_path, monkeypatch, caplog
):
    # Given a hub service that does not answer,
    spawner = local_spawner(tmp_path, f"http://127.0.0.1:{free_port()}/")
    # the server starts all the same, given no settings, so with the defaults,
    with caplog.at_level(logging.WARNING):
        environment = await server_environment(spawner, tmp_path)
    assert not set(environment) & set(ENVIRONMENT.values())
    assert server_traits(environment, monkeypatch) == DEFAULTS.to_json()
    # and the hub's log says why.
    assert any(
        "automatic-snapshot settings, so the server starts with the defaults" in r.getMessage()
        for r in caplog.records
    )


def test_a_malformed_variable_is_logged_and_the_default_used(monkeypatch, caplog):
    # A variable a server was given by hand, or by an older spawner, that is not a setting
    environment = {ENVIRONMENT["settle_seconds"]: "-5", ENVIRONMENT["retention"]: "[1]"}
    with caplog.at_level(logging.WARNING):
        traits = server_traits(environment, monkeypatch)
    assert traits == DEFAULTS.to_json()
    assert sum("the default applies" in r.getMessage() for r in caplog.records) == 2
