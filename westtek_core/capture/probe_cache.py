"""Distribution descriptions kept between probes of one interpreter.

Describing ~110 distributions (their METADATA headers and RECORDs) and sending them back as
~4 MB of JSON is most of a probe's ~0.4 s. The probe reports each metadata directory's
stamp (:func:`~westtek_core.capture.probe.metadata_stamp`); given the stamps of the
descriptions kept here, it describes only the distributions whose directory changed and
reports the others as reused. The interpreter itself is still run every time, so its
``sys.path``, version and set of distributions are always current.

The cache is one JSON file per interpreter under :func:`westtek_core.paths.cache_dir`,
written through a temporary file and a rename; it is only an optimisation, so any trouble
reading or writing it means a full probe, never an error.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import blake3

from westtek_core.capture import probe as probe_module
from westtek_core.paths import cache_dir

log = logging.getLogger(__name__)

_PROBE_SOURCE = Path(probe_module.__file__).resolve()


def _probe_digest() -> str:
    # a description from another version of the probe script may lack fields or differ
    return blake3.blake3(_PROBE_SOURCE.read_bytes()).hexdigest()[:16]


class ProbeCache:
    """The kept descriptions of one interpreter's distributions, by metadata directory."""

    def __init__(self, python: str) -> None:
        key = blake3.blake3(os.path.abspath(python).encode()).hexdigest()[:32]
        self.path = cache_dir() / "probe" / f"{key}.json"
        self._digest = _probe_digest()
        self._entries: dict[str, dict[str, Any]] = {}
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            if isinstance(data, dict) and data.get("probe") == self._digest:
                self._entries = data["distributions"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.debug("probe cache %s unreadable (%s): probing in full", self.path, exc)

    def known(self) -> dict[str, list[int]]:
        """The stamps to send to the probe (``--reuse``)."""
        return {meta_dir: entry["stamp"] for meta_dir, entry in self._entries.items()}

    def complete(self, info: dict[str, Any]) -> dict[str, Any]:
        """Fill the reused distributions of a probe's report in, order them, keep the rest.

        The probe reuses only what :meth:`known` sent it, so every reused one is here.
        """
        stamps: dict[str, list[int]] = info.pop("metadata_stamps", None) or {}
        distributions: list[dict[str, Any]] = []
        entries: dict[str, dict[str, Any]] = {}
        for dist in info["distributions"]:
            meta_dir = dist.get("reused")
            if meta_dir is not None:
                entry = self._entries[meta_dir]
                entries[meta_dir] = entry
                distributions.append(dict(entry["description"]))
                continue
            distributions.append(dist)
            meta_dir = dist.get("metadata_dir")
            # an editable install's names come from files outside its metadata directory
            if meta_dir in stamps and not dist.get("editable"):
                description = {k: v for k, v in dist.items() if k != "shadowed"}
                entries[meta_dir] = {"stamp": stamps[meta_dir], "description": description}
        probe_module.order_distributions(distributions, info["sys_path"])
        info["distributions"] = distributions
        changed = entries != self._entries
        self._entries = entries
        if changed:
            self._save()
        return info

    def _save(self) -> None:
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".probe-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps({"probe": self._digest, "distributions": self._entries}))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.debug("probe cache %s not written: %s", self.path, exc)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
