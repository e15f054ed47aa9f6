"""What the tools' results say about now: the versions installed, stale records, the risk.

The offline provider uses this to keep an old snapshot's or log's versions from standing
beside the live ones, and to grade a drift's risk from the drift and changelog results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from westtek_core.agents.providers.base import Message
from westtek_core.agents.tools import Fact, ToolResult

_PINNED_VERSION = re.compile(r"([A-Za-z][\w.\-]*)(?:==|\s+)(\d+(?:\.\d+)+[\w.+\-]*)")


def live_versions(results: Sequence[tuple[str, ToolResult]]) -> dict[str, str | None]:
    """Package → version installed now, as the tools read it live (None: not installed)."""
    from packaging.utils import canonicalize_name

    versions: dict[str, str | None] = {}
    for name, result in results:
        data = result.data
        if name == "GetEnvironmentDetails":
            for spec in data.get("packages", []):
                if isinstance(spec, str) and "==" in spec:
                    package, version = spec.split("==", 1)
                    versions[canonicalize_name(package)] = version
        elif name == "GetPackageInstallHistory" and "installed" in data:
            versions[canonicalize_name(str(data["package"]))] = data["installed"]
        elif name == "GetDriftEvents":
            for change in (data.get("current") or {}).get("changes", []):
                if change.get("kind") == "package":
                    versions[canonicalize_name(str(change["name"]))] = change.get("after")
    return versions


def states_stale_version(passage: Fact, versions: Mapping[str, str | None]) -> bool:
    """Whether a record of the environment's state gives a package another version than now.

    Records are snapshots' manifests and summaries and the install history; a requirement
    file or a notebook declaring a version is what the lab asked for, never stale.
    """
    from packaging.utils import canonicalize_name

    records = [
        c
        for c in passage.citations
        if c.source.startswith("snapshot:") or c.source == "install-history"
    ]
    if not records:
        return False
    for name, version in _PINNED_VERSION.findall(passage.text):
        canonical = canonicalize_name(name)
        if canonical in versions and versions[canonical] != version:
            return True
    return False


def risk_assessment(results: Sequence[Message]) -> str | None:
    """HIGH, MEDIUM or LOW from the drift and changelog results, None without drift data."""
    critical = minor = 0
    broken_uses = 0
    saw_drift = False
    for message in results:
        if message.result is None or message.error:
            continue
        data = message.result.data
        if message.name == "GetDriftEvents":
            saw_drift = True
            changes = list((data.get("current") or {}).get("changes", []))
            for event in data.get("events", []):
                changes += event.get("changes", [])
            critical += sum(1 for c in changes if c.get("severity") == "critical")
            minor += sum(1 for c in changes if c.get("severity") == "minor")
        if message.name == "GetPackageChangelog":
            broken_uses += sum(
                1 for c in data.get("api_changes", []) if c.get("breaking") and c.get("used_by")
            )
    if not saw_drift:
        return None
    if broken_uses:
        return "HIGH"
    if critical:
        return "MEDIUM"
    return "LOW" if not minor else "LOW (minor drift only)"
