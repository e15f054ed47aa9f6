"""The drift page's timeline: events per lab and day, and its SVG chart's geometry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from westtek_core.wire import DRIFT_STATUSES, epoch_time
from westtek_hub import registry
from westtek_hub.models import DriftEvent, Environment
from westtek_hub.registry import Caller

TIMELINE_DAYS = 30


@dataclass(frozen=True)
class Bar:
    """One stacked segment of the drift timeline: a day, a status, its count and its box."""

    day: str
    status: str
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class TimelineChart:
    """An SVG chart's geometry: bars, y-axis maximum, x-axis labels, and its size."""

    width: int
    height: int
    plot_left: int
    plot_bottom: int
    maximum: int
    bars: list[Bar]
    x_labels: list[tuple[float, str]]
    totals: dict[str, int]


def drift_timeline(
    events: Iterable[tuple[float, str, str]], today: date, days: int = TIMELINE_DAYS
) -> dict[str, list[Counter[str]]]:
    """Per lab, the count of events of each status on each of the last ``days`` days (UTC).

    ``events`` are ``(epoch seconds, status, lab)``; the last day is ``today``.
    """
    first = today - timedelta(days=days - 1)
    timeline: dict[str, list[Counter[str]]] = {}
    for seconds, status, lab in events:
        when = epoch_time(seconds)  # a row stored before times were checked may hold 1e300
        if when is None:
            continue
        day = when.date()
        if first <= day <= today:
            counts = timeline.setdefault(lab, [Counter() for _ in range(days)])
            counts[(day - first).days][status] += 1
    return timeline


def timeline_chart(
    counts: Sequence[Counter[str]], today: date, width: int = 720, height: int = 180
) -> TimelineChart:
    """The geometry of a stacked bar chart of one lab's days (STABLE at the bottom)."""
    left, bottom, top = 36, 22, 8
    plot_w, plot_h = width - left - 4, height - bottom - top
    maximum = max([sum(day.values()) for day in counts] + [1])
    slot = plot_w / max(len(counts), 1)
    first = today - timedelta(days=len(counts) - 1)
    order = list(DRIFT_STATUSES) + sorted({s for day in counts for s in day} - set(DRIFT_STATUSES))
    bars, labels = [], []
    totals: Counter[str] = Counter()
    for i, day in enumerate(counts):
        stamp = (first + timedelta(days=i)).isoformat()
        base = float(height - bottom)
        for status in order:
            n = day.get(status, 0)
            if not n:
                continue
            totals[status] += n
            h = plot_h * n / maximum
            base -= h
            bars.append(
                Bar(stamp, status, n, round(left + i * slot + 1, 2), round(base, 2),
                    round(max(slot - 2, 1), 2), round(h, 2))
            )  # fmt: skip
        if (len(counts) - 1 - i) % 7 == 0:  # weekly, counted back from today's
            labels.append((round(left + i * slot + slot / 2, 2), stamp[5:]))
    return TimelineChart(width, height, left, height - bottom, maximum, bars, labels, dict(totals))


def timeline_events(
    session: Session, caller: Caller, since: datetime
) -> list[tuple[float, str, str]]:
    """``(time, status, lab)`` of the drift events of environments the caller may see."""
    query = (
        select(DriftEvent.time, DriftEvent.status, Environment.lab_id)
        .join(Environment, Environment.id == DriftEvent.environment_id)
        .where(
            DriftEvent.time >= since.timestamp(),
            registry.visibility(session, caller, shared_too=False)[0],  # a share tells no drift
        )
    )
    return [(t, s, lab) for t, s, lab in session.execute(query)]
