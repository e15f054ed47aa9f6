"""The baseline as a drift check reads it: kept per snapshot, the same report, the index unread."""

from __future__ import annotations

import json
import os

import pytest

from tests.core.conftest import pip_install
from westtek_core.capture import capture_environment
from westtek_core.drift import capture_live, detect_drift
from westtek_core.drift.baseline_view import VIEW_DIR, baseline_view
from westtek_core.snapshot import create_snapshot, load_snapshot
from westtek_core.store import LocalDirectoryBackend, Repository


class CountingBackend(LocalDirectoryBackend):
    """A local store that remembers which objects were read."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.loaded: list[str] = []

    def load(self, key):
        self.loaded.append(key)
        return super().load(key)


@pytest.fixture
def snapshot(research_env, tmp_path):
    """A snapshot of the research environment: (store path, cache dir, snapshot id)."""
    store, cache = tmp_path / "store", tmp_path / "cache"
    python, root = str(research_env["python"]), research_env["workspace"]
    with Repository.open(str(store), cache_dir=cache) as repo:
        snapshot_id = create_snapshot(repo, capture_environment([python], root)).id
    return store, cache, snapshot_id


def _drift(repo, research_env, baseline, imports=None):
    python, root = str(research_env["python"]), research_env["workspace"]
    live = capture_live([python], root)
    return detect_drift(live, baseline, root, store=repo, imports=imports).to_json()


def test_drift_is_the_same_from_the_manifest_a_new_view_and_a_kept_one(
    research_env, wheelhouse, snapshot, monkeypatch
):
    # Given drift in packages a notebook imports (an upgrade, one installed since, one gone)
    store, cache, snapshot_id = snapshot
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    pip_install(research_env["python"], wheelhouse, "westtek-yaml-dist==2.0.0")
    (research_env["workspace"] / "data" / "measurements.csv").write_text("t,x\n")
    repo = Repository.open(str(store), cache_dir=cache)
    whole = _drift(repo, research_env, load_snapshot(repo, snapshot_id))
    assert whole["status"] == "CRITICAL_DRIFT"

    # when the view is made from the manifest, then kept and read back without the manifest,
    made = baseline_view(repo, snapshot_id)
    assert (cache / repo.id / VIEW_DIR / f"{snapshot_id}.json").is_file()

    def must_not_load(*args, **kwargs):
        raise AssertionError("the kept view was not used: the manifest was read again")

    monkeypatch.setattr("westtek_core.drift.baseline_view.load_snapshot", must_not_load)
    kept = baseline_view(repo, snapshot_id)

    # the report is the same each way, and the view holds no file trees or RECORD lists
    assert _drift(repo, research_env, made.manifest, made.imports) == whole
    assert _drift(repo, research_env, kept.manifest, kept.imports) == whole
    (interp,) = kept.manifest["interpreters"]
    assert "prefix_tree" not in interp
    assert interp["packages"] and all("files" not in p for p in interp["packages"])


@pytest.mark.parametrize(
    "damage",
    [
        lambda doc: {**doc, "version": doc["version"] + 1},  # written by another version
        lambda doc: {**doc, "format": "something-else"},
        lambda doc: {**doc, "id": "0" * 64},  # another snapshot's
        lambda doc: {**doc, "imports": {"interpreters": [{"label": "env0", "map": []}]}},
        lambda doc: "{not json",
    ],
)
def test_a_kept_view_of_another_version_or_damaged_is_ignored_and_made_again(
    research_env, snapshot, damage
):
    store, cache, snapshot_id = snapshot
    repo = Repository.open(str(store), cache_dir=cache)
    expected = _drift(repo, research_env, load_snapshot(repo, snapshot_id))
    baseline_view(repo, snapshot_id)
    path = cache / repo.id / VIEW_DIR / f"{snapshot_id}.json"
    damaged = damage(json.loads(path.read_text()))
    path.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))

    view = baseline_view(repo, snapshot_id)

    assert _drift(repo, research_env, view.manifest, view.imports) == expected
    assert json.loads(path.read_text())["id"] == snapshot_id  # made again, whole


def test_the_store_index_is_read_only_when_a_file_must_be_compared_by_content(
    research_env, snapshot
):
    # Given a store opened afresh, as a cold `westtek drift` opens it
    store, cache, snapshot_id = snapshot
    backend = CountingBackend(root=str(store))
    repo = Repository.open(backend, cache_dir=cache)
    view = baseline_view(repo, snapshot_id)

    # a drift check with nothing to compare by content reads no index file,
    assert _drift(repo, research_env, view.manifest, view.imports)["status"] == "STABLE"
    assert not [k for k in backend.loaded if k.startswith("index/")]

    # and one that must (a notebook saved again with the same bytes) reads the index then
    notebook = research_env["workspace"] / "analysis.ipynb"
    stat = notebook.stat()
    os.utime(notebook, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert _drift(repo, research_env, view.manifest, view.imports)["changes"] == []
    assert [k for k in backend.loaded if k.startswith("index/")]
