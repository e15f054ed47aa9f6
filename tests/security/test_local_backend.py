"""The local backend runs every server as the hub's OS user, so it serves one user.

Any user's kernel on the local backend can read every other user's home and tokens: the
homes are apart, but the OS user is the same (issue 18, item 7). A second user's spawn is
therefore refused unless IT opts in, and the hub says so in its log at the first spawn.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest
from jupyterhub import orm

from tests.spawner.test_local_backend import make_spawner, wait_for_http
from westtek_spawner.backends import local
from westtek_spawner.errors import SpawnRefused


@pytest.fixture
def hub_db():
    """JupyterHub's own database (in memory), where alice has had a server."""
    session = orm.new_session_factory("sqlite://")()
    alice = orm.User(name="alice")
    bob = orm.User(name="bob")
    session.add_all([alice, bob])
    session.commit()
    session.add(orm.Spawner(user=alice, name="", last_activity=datetime.now(timezone.utc)))
    session.add(orm.Spawner(user=bob, name=""))
    session.commit()
    yield session
    session.close()


def spawner_for(name, hub_db, tmp_path, **local_traits):
    spawner = make_spawner(tmp_path, name, hub_db=hub_db)
    for trait, value in local_traits.items():
        setattr(spawner.config.LocalBackend, trait, value)
    return spawner


async def test_a_second_user_is_refused_with_the_reason(hub_db, tmp_path):
    spawner = spawner_for("bob", hub_db, tmp_path)
    with pytest.raises(SpawnRefused) as refused:
        await spawner.start()
    message = str(refused.value)
    assert "one OS user" in message and "alice" in message and "docker" in message
    assert not (tmp_path / "homes" / "bob").exists()  # refused before anything is made


async def test_the_first_user_and_an_opted_in_hub_are_served(hub_db, tmp_path):
    # alice, whose own earlier server is the only one, is served
    alice = spawner_for("alice", hub_db, tmp_path)
    await wait_for_http(*await alice.start())
    await alice.stop()
    # and bob too once IT has accepted the shared OS user
    bob = spawner_for("bob", hub_db, tmp_path, allow_shared_os_user=True)
    await wait_for_http(*await bob.start())
    await bob.stop()


async def test_the_hub_log_says_every_server_runs_as_its_os_user(
    hub_db, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(local, "_warned", False)
    caplog.set_level(logging.WARNING)
    alice = spawner_for("alice", hub_db, tmp_path)
    await wait_for_http(*await alice.start())
    await alice.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("as the hub's own OS user" in w and "docker backend" in w for w in warnings)
