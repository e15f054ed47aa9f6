"""A lab's automatic-snapshot settings: checked, with their defaults, on their way to servers.

A lab's admins (or the hub admins) set any of four settings in the hub panel: whether
automatic snapshots are on, how long a change settles, the hours between scheduled ones, and
the retention of automatic snapshots (a :class:`RetentionPolicy`). A setting left unset is
the default, :data:`DEFAULTS`, made of :mod:`westtek_core.autosnapshot`'s constants. The hub
service keeps only what was set (:func:`checked_settings`); at each spawn the spawner asks it
for the lab's settings and gives them to the server as the variables :data:`ENVIRONMENT`
names (:func:`to_environment`), which the server extension's traits default from
(:func:`from_environment`). A server's own ``c.WestTekExtension.auto_snapshot_*`` still
wins: explicit configuration beats a default.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from westtek_core.autosnapshot import (
    DEFAULT_AUTO_RETENTION,
    DEFAULT_INTERVAL_HOURS,
    DEFAULT_SETTLE_SECONDS,
)
from westtek_core.request_input import BadInput, parse_json
from westtek_core.snapshot.retention import RetentionPolicy

log = logging.getLogger(__name__)

RETENTION_KEYS = tuple(f.name for f in fields(RetentionPolicy))


@dataclass(frozen=True)
class Bounds:
    """The numbers a setting takes: ``minimum`` to ``maximum``, only integers if ``whole``."""

    minimum: float
    maximum: float
    whole: bool = False

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is such a number (a bool is none: Python counts it an int)."""
        kind = int if self.whole else (int, float)
        # NaN and infinities fall outside any bounds; a huge integer compares exactly
        return (
            not isinstance(value, bool)
            and isinstance(value, kind)
            and (self.minimum <= value <= self.maximum)
        )

    @property
    def step(self) -> str:
        """The step of a form's number input: ``1`` for integers, else ``any``."""
        return "1" if self.whole else "any"


LIMITS = {
    # a change left unsnapshotted longer than a week is lost
    "settle_seconds": Bounds(0, 7 * 24 * 3600),
    "interval_hours": Bounds(0, 366 * 24),
    # far beyond any store's snapshots; keeps the count a small integer
    "keep": Bounds(0, 100_000, whole=True),
}
"""The bounds of each number setting (each retention count: ``keep``): what
:func:`checked_settings` accepts and the hub panel's form offers."""


@dataclass(frozen=True)
class AutoSnapshotSettings:
    """What a server's automatic snapshots do (see ``AutoSnapshotter``)."""

    enabled: bool = True
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    interval_hours: float = DEFAULT_INTERVAL_HOURS
    retention: RetentionPolicy = DEFAULT_AUTO_RETENTION

    def to_json(self) -> dict[str, Any]:
        """The settings as the hub service's API shows them."""
        return asdict(self)


DEFAULTS = AutoSnapshotSettings()
"""The settings of a lab that set none, and of a server that was given none."""

SETTINGS = tuple(f.name for f in fields(AutoSnapshotSettings))

ENVIRONMENT = {
    "enabled": "WESTTEK_AUTO_SNAPSHOTS",
    "settle_seconds": "WESTTEK_AUTO_SNAPSHOT_SETTLE_SECONDS",
    "interval_hours": "WESTTEK_AUTO_SNAPSHOT_INTERVAL_HOURS",
    "retention": "WESTTEK_AUTO_SNAPSHOT_RETENTION",
}
"""The variable each setting reaches a server in (its value is JSON)."""


def retention_policy(value: Any) -> RetentionPolicy:
    """``value`` (``{"keep_last": 10, ...}``) as a policy; :class:`BadInput` says what is wrong.

    A key left out keeps none by it, as ``westtek snapshot prune`` does; a policy keeping
    nothing at all is refused (it would delete every automatic snapshot).
    """
    if not isinstance(value, Mapping):
        raise BadInput(f"retention must be an object with {', '.join(RETENTION_KEYS)}")
    unknown = sorted(str(key) for key in set(value) - set(RETENTION_KEYS))
    if unknown:
        raise BadInput(
            f"unknown retention key {', '.join(unknown)}: use {', '.join(RETENTION_KEYS)}"
        )
    keep = LIMITS["keep"]
    for key, count in value.items():
        if not keep.allows(count):  # 2.0 is no count
            raise BadInput(
                f"retention {key} must be an integer from {keep.minimum:g} to {keep.maximum:g}"
            )
    policy = RetentionPolicy(**value)
    if policy.empty:
        raise BadInput("retention must keep some snapshots: every count is 0")
    return policy


# what a number setting is, as the panel's form calls it, and its unit in seconds
_NUMBERS = {
    "settle_seconds": ("the settle time after a change", "seconds", 1),
    "interval_hours": ("the time between scheduled snapshots", "hours", 3600),
}


def _number(value: Any, name: str) -> float:
    bounds = LIMITS[name]
    if not bounds.allows(value):
        meaning, unit, seconds = _NUMBERS[name]
        raise BadInput(
            f"{name} ({meaning}) must be a number of {unit} from {bounds.minimum:g} to "
            f"{bounds.maximum:g} ({bounds.maximum * seconds / 86400:g} days)"
        )
    # 30, not 30.0, in the audit log and the API, whether it came from JSON or the database
    return int(value) if float(value).is_integer() else float(value)


def checked_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings ``values`` sets, checked and in their JSON form; unset (None) ones left out.

    :class:`BadInput` (one line) on an unknown setting or a value out of range, before
    anything is used.
    """
    unknown = sorted(str(key) for key in set(values) - set(SETTINGS))
    if unknown:
        raise BadInput(f"unknown setting {', '.join(unknown)}: use {', '.join(SETTINGS)}")
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if name == "enabled":
            if not isinstance(value, bool):
                raise BadInput("enabled must be true or false")
            checked[name] = value
        elif name in LIMITS:
            checked[name] = _number(value, name)
        else:
            checked[name] = asdict(retention_policy(value))
    return checked


def effective(values: Mapping[str, Any]) -> AutoSnapshotSettings:
    """The settings a server gets from a lab that set ``values``: the defaults for the rest."""
    checked = checked_settings(values)
    if "retention" in checked:
        checked["retention"] = RetentionPolicy(**checked["retention"])
    return replace(DEFAULTS, **checked)


def to_environment(values: Mapping[str, Any]) -> dict[str, str]:
    """The server's variables for the settings ``values`` sets (none for unset ones)."""
    return {
        ENVIRONMENT[name]: json.dumps(value) for name, value in checked_settings(values).items()
    }


def from_environment(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """Setting ``name`` from its variable in ``environ`` (the process's), else its default.

    In JSON form (the retention as a dict). A malformed value is logged and the default
    used: a server always starts.
    """
    environ = os.environ if environ is None else environ
    variable = ENVIRONMENT[name]
    raw = environ.get(variable, "")
    if raw:
        try:
            return checked_settings({name: parse_json(raw)})[name]
        except (BadInput, KeyError) as e:  # KeyError: a JSON null, i.e. unset
            log.warning("%s=%.80r is not used (%s): the default applies", variable, raw, e)
    return DEFAULTS.to_json()[name]
