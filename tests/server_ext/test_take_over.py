"""A successor's server takes over a predecessor's environment through the REST API."""

from __future__ import annotations

import json

import pytest

from tests.server_ext.test_api import call, error, finish
from westtek_core.capture import capture_environment
from westtek_core.snapshot import create_snapshot
from westtek_core.store import Repository
from westtek_server_ext import models


@pytest.fixture
def westtek_traits(westtek_traits, research_env, tmp_path):
    """Carol's server, over an empty workspace, in the lab store holding bob's snapshot."""
    repo = Repository.open(westtek_traits["store"])
    capture = capture_environment([str(research_env["python"])], research_env["workspace"])
    create_snapshot(repo, capture, environment_id="bob")
    repo.close()
    carol = tmp_path / "carol"
    carol.mkdir()
    return westtek_traits | {"workspace": str(carol), "environment_id": "carol"}


async def test_a_successor_takes_over_and_the_server_opens_on_the_start_page(
    jp_fetch, tmp_path, research_env
):
    code, job = await call(
        jp_fetch, "POST", "take-over", body={"environment_id": "bob", "predecessor": "bob"}
    )
    assert code == 202
    # the start URL, asked at once, waits for the take-over and opens on its page
    response = await jp_fetch("westtek", "start-here", follow_redirects=False, raise_error=False)
    assert response.code == 302
    assert response.headers["Location"].endswith("/lab?westtek-start-page=from-bob%2FSTART_HERE.md")
    job = await finish(jp_fetch, job, timeout=1)
    assert job["state"] == "succeeded", job["error"]
    done = models.TakeOver.model_validate(job["result"])
    carol = tmp_path / "carol"
    assert (carol / "from-bob" / "analysis.ipynb").exists()
    assert (carol / done.start_page).read_text().startswith("# Start here: bob's work")
    # the kernel is one this server offers,
    specs = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert specs["bob-research"]["spec"]["display_name"] == "bob's research"
    # and the take-over is listed.
    _, listed = await call(jp_fetch, "GET", "take-over")
    assert models.TakeOvers.model_validate(listed).take_overs == [done]


async def test_nothing_to_take_over_is_a_one_line_error(jp_fetch, tmp_path):
    code, answer = await error(jp_fetch, "POST", "take-over", body={"environment_id": "bob"})
    assert code == 400 and "predecessor" in answer["message"]
    _, job = await call(
        jp_fetch, "POST", "take-over", body={"environment_id": "dan", "predecessor": "dan"}
    )
    job = await finish(jp_fetch, job)
    assert job["state"] == "failed"
    assert job["error"] == "the lab's store holds no snapshot of dan"
    assert sorted(p.name for p in (tmp_path / "carol").iterdir()) == []
    response = await jp_fetch("westtek", "start-here", follow_redirects=False, raise_error=False)
    assert response.headers["Location"].endswith("/lab")
