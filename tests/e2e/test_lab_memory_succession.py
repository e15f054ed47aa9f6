"""End to end, on the real demo hub: a lab's memory outlives a researcher who leaves.

alice and bob, of lab vault-13, each keep an ``analysis.ipynb`` of their own and snapshot it
through their servers. bob leaves: the hub admin hands his environment to alice. She asks
the lab's memory (through the hub service, with her own token) about both notebooks and
gets each answer cited to the right researcher's snapshot; then she takes bob's environment
over, and the server the hub launches for her brings his notebook into a folder of her
workspace (beside her own analysis.ipynb) before it opens, on the take-over's start page.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.core.kb.test_lab_memory import notebook
from tests.e2e.conftest import HubProcess
from tests.e2e.test_demo_sharing_and_succession import (  # noqa: F401 - fixtures
    Researcher,
    demo_hub,
    research_venv,
    wait_for,
    wait_until_ready,
    wait_until_stopped,
)

pytestmark = pytest.mark.slow

NOTEBOOK = "analysis.ipynb"
WORK = {
    "alice": notebook("import numpy as np", "# the laser alignment offsets, per mirror mount"),
    "bob": notebook("import json", "# figure 3: the fitted decay of the beam current"),
}


def snapshot_through_server(hub: HubProcess, person: Researcher) -> str:
    """Start ``person``'s server, snapshot it, wait for the hub service to know, stop it."""
    assert hub.api("POST", f"users/{person.name}/server").status_code in (201, 202)
    wait_until_ready(hub, person.name)
    started = person.server("POST", "snapshots", {"note": "my analysis", "labels": {}})
    assert started.status_code == 202, started.text

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = person.server("GET", f"jobs/{started.json()['id']}").json()
        return job if job["state"] in ("succeeded", "failed") else None

    job = wait_for(f"{person.name}'s snapshot", finished, 180, hub)
    assert job["state"] == "succeeded", job
    snapshot: str = job["result"]["id"]
    wait_for(
        f"{person.name}'s snapshot reported",
        lambda: person.environments().get(person.name, {}).get("last_snapshot_id") == snapshot,
        60,
        hub,
    )
    assert hub.api("DELETE", f"users/{person.name}/server").status_code in (202, 204)
    wait_until_stopped(hub, person.name)
    return snapshot


def test_a_successor_asks_about_two_colleagues_same_named_notebooks_and_takes_one_over(
    demo_hub: HubProcess,  # noqa: F811
) -> None:
    hub = demo_hub
    alice, bob = Researcher(hub, "alice"), Researcher(hub, "bob")
    overseer = Researcher(hub, "overseer")
    homes = hub.workdir / "westtek-users"
    # Given alice's and bob's analysis.ipynb, each snapshotted through their own server,
    snapshots = {}
    for person in (alice, bob):
        (homes / person.name).mkdir(parents=True, exist_ok=True)
        (homes / person.name / NOTEBOOK).write_bytes(WORK[person.name])
        snapshots[person.name] = snapshot_through_server(hub, person)
    # when bob leaves and the hub admin hands his environment to alice,
    moved = overseer.service(
        "POST", "knowledge/transfer", {"environment_id": "bob", "to_researcher": "alice"}
    )
    assert moved.status_code == 200, moved.text

    # then alice finds each one's notebook, cited to its own researcher and snapshot,
    def cited(question: str) -> dict[str, Any] | None:
        response = alice.service("GET", f"knowledge/search?q={question}&k=1")
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        return results[0]["citation"] if results else None

    for question, whose in (
        ("which notebook makes figure 3 of the beam current decay", "bob"),
        ("where are the laser alignment offsets per mirror mount", "alice"),
    ):
        citation = wait_for(
            f"an answer about {whose}'s work", lambda q=question: cited(q), 120, hub
        )
        assert (citation["environment_id"], citation["researcher"], citation["path"]) == (
            whose,
            whose,
            NOTEBOOK,
        ), citation
        assert citation["snapshot_id"] == snapshots[whose]

    # and when she takes bob's environment over, the hub starts her own server, which
    # brings his notebook into a folder of her workspace before it opens on its start page,
    # her own notebook of that name untouched.
    taken = alice.service("POST", "environments/take-over", {"environment_id": "bob"})
    assert taken.status_code == 202, taken.text
    assert taken.json()["user_options"] == {
        "westtek_take_over": "bob",
        "westtek_predecessor": "bob",
        "westtek_take_over_snapshot": snapshots["bob"],
    }
    wait_until_ready(hub, "alice")
    assert (homes / "alice" / NOTEBOOK).read_bytes() == WORK["alice"]
    folder = homes / "alice" / "from-bob"
    assert json.loads((folder / NOTEBOOK).read_text())["cells"] == json.loads(WORK["bob"])["cells"]
    assert (folder / "START_HERE.md").read_text().startswith("# Start here: bob's work")
    start = requests.get(
        f"{hub.url}/user/alice/westtek/start-here",
        headers=alice.headers,
        allow_redirects=False,
        timeout=60,
    )
    assert start.status_code == 302, start.text
    assert start.headers["Location"].endswith("/lab?westtek-start-page=from-bob%2FSTART_HERE.md")
    assert hub.api("DELETE", "users/alice/server").status_code in (202, 204)
    wait_until_stopped(hub, "alice")

    # bob, still in the lab, starts a server again: "bob" names alice's environment now, so
    # his server reports as the next generation of his id, his own.
    assert hub.api("POST", "users/bob/server").status_code in (201, 202)
    wait_until_ready(hub, "bob")
    environment = bob.server("GET", "environment")
    assert environment.status_code == 200, environment.text
    assert environment.json()["environment_id"] == "bob:@2"
    assert hub.api("DELETE", "users/bob/server").status_code in (202, 204)
    wait_until_stopped(hub, "bob")
