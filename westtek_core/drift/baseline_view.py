"""What a drift check reads of its baseline snapshot, kept per snapshot in the store's cache.

A baseline's manifest is large (every file of each environment with its chunk ids, every
distribution's RECORD paths: 6.8 MB of JSON for a 700 MB venv) and reading it was much of
a cold ``westtek drift``. The comparison needs far less: the manifest without those two
lists, and which distribution provides each module (:class:`BaselineImports`). A
snapshot's id is the hash of its manifest, so that view never goes stale: it is kept as
``drift-baselines/<id>.json`` in the store's cache directory, written atomically, with a
format version; one of another version, unreadable, or naming another snapshot is ignored
and made again from the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from westtek_core.drift.grading import BaselineImports
from westtek_core.paths import write_atomic
from westtek_core.snapshot import load_snapshot
from westtek_core.store import Repository

VIEW_DIR = "drift-baselines"
VIEW_FORMAT = "westtek-drift-baseline"
VIEW_VERSION = 1


@dataclass(frozen=True)
class BaselineView:
    """A baseline snapshot as a drift check reads it.

    ``manifest`` is the snapshot's manifest without the environments' file trees and the
    distributions' RECORD lists (nothing a comparison with a live capture reads);
    ``imports`` is what those RECORD lists say about ``import``.
    """

    manifest: dict[str, Any]
    imports: BaselineImports

    @classmethod
    def of(cls, manifest: Mapping[str, Any]) -> BaselineView:
        """The view of a whole manifest."""
        interpreters = [
            {
                **{k: v for k, v in interp.items() if k != "prefix_tree"},
                "packages": [
                    {k: v for k, v in p.items() if k != "files"} for p in interp.get("packages", [])
                ],
            }
            for interp in manifest.get("interpreters", [])
        ]
        return cls({**manifest, "interpreters": interpreters}, BaselineImports.of(manifest))


def baseline_view(repo: Repository, snapshot_id: str) -> BaselineView:
    """The drift view of snapshot ``snapshot_id`` (a full id), from the cache when kept."""
    path = repo.cache_dir / VIEW_DIR / f"{snapshot_id}.json"
    kept = _read_view(path, snapshot_id)
    if kept is not None:
        return kept
    view = BaselineView.of(load_snapshot(repo, snapshot_id))
    doc = {
        "format": VIEW_FORMAT,
        "version": VIEW_VERSION,
        "id": snapshot_id,
        "manifest": view.manifest,
        "imports": view.imports.to_json(),
    }
    try:
        write_atomic(path, json.dumps(doc, separators=(",", ":")))
    except OSError:
        pass  # a cache: the next check reads the manifest again
    return view


def _read_view(path: Path, snapshot_id: str) -> BaselineView | None:
    """The view kept at ``path``, or None when there is none of this version for this id."""
    try:
        doc = json.loads(path.read_bytes())
        if (doc["format"], doc["version"], doc["id"]) != (VIEW_FORMAT, VIEW_VERSION, snapshot_id):
            return None
        manifest = doc["manifest"]
        if not isinstance(manifest, dict) or manifest.get("id") != snapshot_id:
            return None
        return BaselineView(manifest, BaselineImports.from_json(doc["imports"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
