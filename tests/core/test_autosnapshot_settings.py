"""A lab's automatic-snapshot settings: checked whole, the defaults for what is unset, and
carried to a server in variables that read back as the same settings."""

from __future__ import annotations

import math

import pytest

from westtek_core.autosnapshot import (
    DEFAULT_AUTO_RETENTION,
    DEFAULT_INTERVAL_HOURS,
    DEFAULT_SETTLE_SECONDS,
)
from westtek_core.autosnapshot_settings import (
    DEFAULTS,
    ENVIRONMENT,
    LIMITS,
    checked_settings,
    effective,
    from_environment,
    to_environment,
)
from westtek_core.request_input import BadInput
from westtek_core.snapshot.retention import RetentionPolicy


def test_the_defaults_are_the_automatic_snapshotters():
    assert DEFAULTS.enabled is True
    assert DEFAULTS.settle_seconds == DEFAULT_SETTLE_SECONDS
    assert DEFAULTS.interval_hours == DEFAULT_INTERVAL_HOURS
    assert DEFAULTS.retention == DEFAULT_AUTO_RETENTION


def test_unset_settings_are_the_defaults_and_set_ones_are_normalised():
    # null is unset; numbers become floats; a retention names all its counts
    values = {"enabled": None, "settle_seconds": 5, "retention": {"keep_weekly": 2}}
    assert checked_settings(values) == {
        "settle_seconds": 5.0,
        "retention": {"keep_last": 0, "keep_daily": 0, "keep_weekly": 2, "keep_monthly": 0},
    }
    settings = effective(values)
    assert settings.enabled is DEFAULTS.enabled
    assert settings.interval_hours == DEFAULTS.interval_hours
    assert settings.retention == RetentionPolicy(keep_weekly=2)


@pytest.mark.parametrize(
    "values",
    [
        {"settle_seconds": -0.5},
        {"settle_seconds": True},
        {"interval_hours": 10_000},
        {"enabled": 1},
        {"retention": {"keep_last": -1}},
        {"retention": {"keep_last": 1.0}},
        {"retention": {"keep_daily": 0, "keep_last": 0}},
        {"retention": "10"},
        {"schedule": "daily"},
    ],
)
def test_bad_settings_are_refused_in_one_line(values):
    with pytest.raises(BadInput) as refused:
        checked_settings(values)
    assert "\n" not in str(refused.value)


def _setting(name, value):
    """Settings setting ``name`` (a retention count: ``keep``) to ``value``."""
    if name == "keep":  # another count kept, so a 0 is no empty policy
        return {"retention": {"keep_last": value, "keep_daily": 1}}
    return {name: value}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_every_bound_in_limits_is_accepted_and_one_past_it_refused(name):
    bounds = LIMITS[name]
    # one past a bound: the next integer for a count, the next float for a number
    step = 1 if bounds.whole else 0
    below = bounds.minimum - step if step else math.nextafter(bounds.minimum, -math.inf)
    above = bounds.maximum + step if step else math.nextafter(bounds.maximum, math.inf)
    for value in (bounds.minimum, bounds.maximum):
        checked_settings(_setting(name, value))
    for value in (below, above):
        with pytest.raises(BadInput):
            checked_settings(_setting(name, value))


def test_the_variables_read_back_as_the_settings_they_carry():
    values = {"enabled": False, "interval_hours": 0, "retention": {"keep_last": 4}}
    environment = to_environment(values)
    # only what was set travels; each in its own variable
    assert set(environment) == {ENVIRONMENT[name] for name in values}
    read = {name: from_environment(name, environment) for name in ENVIRONMENT}
    assert read == DEFAULTS.to_json() | checked_settings(values)
    # nothing given: the defaults
    assert {name: from_environment(name, {}) for name in ENVIRONMENT} == DEFAULTS.to_json()
