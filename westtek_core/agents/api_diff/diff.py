"""What changed between two versions: public API changes, metadata and release notes.

Removals and breaking signature changes (parameters removed, renamed, made keyword-only,
new required ones, defaults changed) come first; a change to one object reachable
through several public paths is reported once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from typing import Any

from westtek_core.agents.api_diff.api import ApiItem, Param


@dataclass
class ApiChange:
    """One change of the public API from the old version to the new."""

    name: str
    kind: str
    change: str  # removed | signature_changed | deprecated | kind_changed | added
    before: str | None
    after: str | None
    details: list[str] = field(default_factory=list)
    breaking: bool = False
    also: list[str] = field(default_factory=list)
    """Other public paths to the same object, with the same change."""
    definition: str = ""

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "change": self.change,
            "before": self.before,
            "after": self.after,
            "details": self.details,
            "breaking": self.breaking,
            "also": self.also,
        }


def compare_params(old: Sequence[Param], new: Sequence[Param]) -> tuple[list[str], bool]:
    """What changed between two signatures, and whether existing calls can break."""
    details: list[str] = []
    breaking = False
    old_by, new_by = {p.name: p for p in old}, {p.name: p for p in new}
    accepts_any_keyword = any(p.kind == "var-keyword" for p in new)
    accepts_any_positional = any(p.kind == "var-positional" for p in new)
    for param in old:
        if param.name in new_by or param.kind in ("var-positional", "var-keyword"):
            continue
        details.append(f"parameter `{param.name}` removed")
        if not (accepts_any_keyword and param.kind != "positional-only"):
            breaking = True
    for param in new:
        if param.name in old_by or param.kind in ("var-positional", "var-keyword"):
            continue
        if param.default is None:
            details.append(f"new required parameter `{param.name}`")
            breaking = True
        else:
            details.append(f"new optional parameter `{param.name}={param.default}`")
    for old_var in ("var-positional", "var-keyword"):
        had = any(p.kind == old_var for p in old)
        has = any(p.kind == old_var for p in new)
        if had and not has:
            details.append(
                f"no longer accepts {'*args' if old_var == 'var-positional' else '**kwargs'}"
            )
            breaking = True
    old_positional = [p.name for p in old if p.kind in ("positional-only", "positional")]
    new_positional = [p.name for p in new if p.kind in ("positional-only", "positional")]
    common = [n for n in old_positional if n in new_positional]
    if [n for n in new_positional if n in common] != common and not accepts_any_positional:
        details.append(
            "positional order changed: ("
            + ", ".join(old_positional)
            + ") → ("
            + ", ".join(new_positional)
            + ")"
        )
        breaking = True
    for name in (p.name for p in old):
        before, after = old_by[name], new_by.get(name)
        if after is None or before.kind in ("var-positional", "var-keyword"):
            continue
        if before.kind != after.kind:
            details.append(f"`{name}` is now {after.kind} (was {before.kind})")
            if (
                before.kind == "positional" and after.kind in ("keyword-only", "positional-only")
            ) or (before.kind == "keyword-only" and after.kind == "positional-only"):
                breaking = True
        if before.default is not None and after.default is None:
            details.append(f"`{name}` is now required (default was {before.default})")
            breaking = True
        elif before.default is not None and after.default != before.default:
            details.append(f"default of `{name}` changed: {before.default} → {after.default}")
    return details, breaking


def diff_api(old: Mapping[str, ApiItem], new: Mapping[str, ApiItem]) -> list[ApiChange]:
    """Every change from ``old`` to ``new``: removals and breaking changes first.

    A change to one object reachable through several public paths is reported once, under
    its shortest path, the others in ``also``.
    """
    by_definition: dict[tuple[str, str], ApiChange] = {}
    changes: list[ApiChange] = []
    new_by_leaf: dict[tuple[str, str], list[ApiItem]] = {}
    for item in new.values():
        new_by_leaf.setdefault((item.name.rsplit(".", 1)[-1], item.kind), []).append(item)

    def record(key: tuple[str, str], change: ApiChange) -> None:
        existing = by_definition.get(key)
        if existing is None:
            by_definition[key] = change
            changes.append(change)
        elif change.name not in existing.also and change.name != existing.name:
            if len(change.name) < len(existing.name):
                existing.also.append(existing.name)
                existing.name = change.name
            else:
                existing.also.append(change.name)

    moved_to: set[str] = set()
    for name in sorted(old, key=lambda n: (n.count("."), n)):
        before, after = old[name], new.get(name)
        if after is None:
            moved = [
                i.name
                for i in new_by_leaf.get((name.rsplit(".", 1)[-1], before.kind), [])
                if i.params == before.params
            ]
            details = [f"now at `{min(moved, key=len)}`"] if moved else []
            moved_to.update(moved)
            record(
                (before.definition, "removed:" + name),
                ApiChange(
                    name,
                    before.kind,
                    "removed",
                    before.signature,
                    None,
                    details,
                    True,
                    definition=before.definition,
                ),
            )
            continue
        if before.kind != after.kind:
            record(
                (before.definition, "kind"),
                ApiChange(
                    name,
                    after.kind,
                    "kind_changed",
                    before.kind,
                    after.kind,
                    [f"was a {before.kind}, now a {after.kind}"],
                    True,
                    definition=before.definition,
                ),
            )
            continue
        if before.params is not None and after.params is not None and before.params != after.params:
            details, breaking = compare_params(before.params, after.params)
            if details:
                record(
                    (before.definition, "signature"),
                    ApiChange(
                        name,
                        after.kind,
                        "signature_changed",
                        before.signature,
                        after.signature,
                        details,
                        breaking,
                        definition=before.definition,
                    ),
                )
        if after.deprecated and not before.deprecated:
            record(
                (before.definition, "deprecated"),
                ApiChange(
                    name,
                    after.kind,
                    "deprecated",
                    before.signature,
                    after.signature,
                    ["deprecated in the new version"],
                    False,
                    definition=before.definition,
                ),
            )
    added = [n for n in new if n not in old and n not in moved_to]
    added_definitions: set[str] = set()
    for name in sorted(added, key=lambda n: (n.count("."), n)):
        item = new[name]
        if item.definition in added_definitions:
            continue
        added_definitions.add(item.definition)
        changes.append(
            ApiChange(name, item.kind, "added", None, item.signature, definition=item.definition)
        )
    order = {"removed": 0, "kind_changed": 1, "signature_changed": 2, "deprecated": 3, "added": 4}
    changes.sort(key=lambda c: (not c.breaking, order[c.change], c.name))
    return changes


def metadata_fields(text: str) -> dict[str, Any]:
    """The METADATA headers that matter to a user: requirements, Python, summary."""
    if not text:
        return {}
    headers = HeaderParser().parsestr(text)
    return {
        "summary": headers.get("Summary"),
        "requires_python": headers.get("Requires-Python"),
        "requires_dist": sorted(headers.get_all("Requires-Dist") or []),
    }


def diff_metadata(old: str, new: str) -> list[str]:
    """What changed in the declared requirements and supported Pythons."""
    before, after = metadata_fields(old), metadata_fields(new)
    if not before or not after:
        return []
    out = []
    if before["requires_python"] != after["requires_python"]:
        out.append(
            f"Requires-Python: {before['requires_python'] or 'any'} → "
            f"{after['requires_python'] or 'any'}"
        )
    old_reqs, new_reqs = set(before["requires_dist"]), set(after["requires_dist"])
    out += [f"requirement removed: {r}" for r in sorted(old_reqs - new_reqs)]
    out += [f"requirement added: {r}" for r in sorted(new_reqs - old_reqs)]
    return out


_HEADING_VERSION = re.compile(r"^\W*(?:v(?:ersion)?\s*)?(\d+(?:\.\d+)+\w*)", re.I)


def release_notes_between(text: str, old: str, new: str, max_lines: int = 60) -> list[str]:
    """The lines of a changelog from the ``new`` version's heading down to ``old``'s."""
    lines = text.splitlines()
    start = end = None
    for index, line in enumerate(lines):
        match = _HEADING_VERSION.match(line.strip())
        if not match:
            continue
        version = match.group(1)
        if start is None and version == new:
            start = index
        elif start is not None and version == old:
            end = index
            break
    if start is None:
        return []
    return [line for line in lines[start : end if end is not None else None] if line.strip()][
        :max_lines
    ]
