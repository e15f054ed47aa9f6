"""Drift notifications: deliver drift events to the hub service and configured sinks.

:meth:`Notifier.publish` is what a drift watcher's ``on_event`` calls: it keeps the event
for each sink whose ``min_severity`` it reaches in a durable :class:`Outbox` (SQLite in the
data directory) and returns at once; a :class:`Dispatcher` delivers in the background, in
order per sink, retrying with exponential backoff while a sink is down. A sink that is down
never blocks detection, and its events survive a restart of the process.

Sinks: :class:`HubSink` (the West Tek hub service, on by default under JupyterHub),
:class:`SmtpSink` (email), :class:`WebhookSink` (Slack-compatible JSON),
:class:`SnsSink` (Amazon SNS: critical drift to the lab's alert topic, on by default when
``$WESTTEK_ALERT_TOPIC_ARN`` names one) and :class:`EventBridgeSink` (the stage's drift bus,
on by default when ``$WESTTEK_EVENT_BUS`` names one). A sink that is not configured enough
is disabled. Configure them in ``jupyter_server_config.py`` (or any traitlets config)::

    c.Notifier.sinks = ["hub", "webhook", "smtp", "sns"]   # names, classes or import strings
    c.WebhookSink.url = "https://hooks.slack.com/services/T000/B000/XXXX"
    c.WebhookSink.min_severity = "critical"
    c.SmtpSink.host = "smtp.example.org"
    c.SmtpSink.starttls = True
    c.SmtpSink.username = "westtek"
    c.SmtpSink.password = "..."
    c.SmtpSink.sender = "westtek@example.org"
    c.SmtpSink.to = ["lab-admins@example.org"]
    c.SnsSink.topic_arn = "arn:aws:sns:eu-west-1:123456789012:westtek-drift"
    c.Dispatcher.max_delay = 600.0                       # backoff cap, seconds
    c.Notifier.outbox_path = "/srv/westtek/outbox.sqlite3"

Two sinks of one kind are configured as instances with distinct names, e.g.
``c.Notifier.sinks = [WebhookSink(name="slack-lab", url=...), WebhookSink(name="ops", ...)]``.
Then::

    notifier = notifier_from_config(config)
    notifier.start()                 # delivery threads
    watcher = DriftWatcher(..., on_event=notifier.publish)
    ...
    notifier.stop()
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from traitlets import List, TraitError, Unicode, default, validate
from traitlets.config import Config, LoggingConfigurable
from traitlets.utils.importstring import import_item

from westtek_core.notify.outbox import Dispatcher, Outbox, OutboxEntry, event_key
from westtek_core.notify.sinks import (
    SINK_ALIASES,
    DeliveryError,
    EventBridgeSink,
    EventSink,
    HubSink,
    SmtpSink,
    SnsSink,
    WebhookSink,
    event_severity,
    event_subject,
    event_text,
    make_drift_bus_entry,
    make_email,
    make_sns_publish_kwargs,
    make_webhook_payload,
)
from westtek_core.paths import data_dir

__all__ = [
    "DeliveryError",
    "Dispatcher",
    "EventBridgeSink",
    "EventSink",
    "HubSink",
    "Notifier",
    "Outbox",
    "OutboxEntry",
    "SmtpSink",
    "SnsSink",
    "WebhookSink",
    "event_key",
    "event_severity",
    "event_subject",
    "event_text",
    "make_drift_bus_entry",
    "make_email",
    "make_sns_publish_kwargs",
    "make_webhook_payload",
    "notifier_from_config",
]


def _sink_entry(value: Any) -> type[EventSink] | EventSink:
    if isinstance(value, EventSink):
        return value
    if isinstance(value, str):
        value = SINK_ALIASES.get(value.lower()) or import_item(value)
    if isinstance(value, type) and issubclass(value, EventSink):
        return value
    raise TraitError(
        f"Notifier.sinks entries must be an EventSink class, instance, import string or one "
        f"of {', '.join(sorted(SINK_ALIASES))}; got {value!r}"
    )


class Notifier(LoggingConfigurable):
    """The configured sinks, their outbox and its dispatcher; :meth:`publish` is the entry."""

    sinks = List(
        ["hub", "sns", "eventbridge"],
        config=True,
        help="Where drift events go: sink names (hub, smtp, webhook, sns, eventbridge), "
        "EventSink classes, import strings or configured instances. Sinks that are not "
        "configured enough (no URL, host, topic or bus; no hub token) are skipped: by "
        "default the hub service, and on AWS the lab's alert topic and the stage's bus "
        "that the spawner names in the server's environment.",
    )
    outbox_path = Unicode(
        config=True,
        help="SQLite file of the durable outbox; default: outbox.sqlite3 in West Tek's "
        "data directory.",
    )

    @default("outbox_path")
    def _default_outbox_path(self) -> str:
        return str(data_dir() / "outbox.sqlite3")

    @validate("sinks")
    def _validate_sinks(self, proposal: Any) -> list[Any]:
        return [_sink_entry(value) for value in proposal["value"]]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        entries = [_sink_entry(value) for value in self.sinks]  # the default is not validated
        built = [entry if isinstance(entry, EventSink) else entry(parent=self) for entry in entries]
        names = [sink.name for sink in built]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise TraitError(f"Notifier.sinks: duplicate sink names {duplicates}")
        for sink in built:
            if not sink.enabled:
                self.log.debug("Notification sink %s is not configured; skipped", sink.name)
        self.active_sinks: list[EventSink] = [sink for sink in built if sink.enabled]
        self._lock = threading.Lock()
        self._outbox: Outbox | None = None
        self._dispatcher: Dispatcher | None = None

    @property
    def outbox(self) -> Outbox:
        """The outbox, opened on first use (no file while nothing is published)."""
        with self._lock:
            if self._outbox is None:
                self._outbox = Outbox(self.outbox_path)
            return self._outbox

    @property
    def dispatcher(self) -> Dispatcher:
        """The dispatcher of the outbox to the active sinks."""
        outbox = self.outbox
        with self._lock:
            if self._dispatcher is None:
                self._dispatcher = Dispatcher(outbox, self.active_sinks, parent=self)
            return self._dispatcher

    def publish(self, event: Mapping[str, Any]) -> list[str]:
        """Queue ``event`` for every active sink that wants it; never blocks, never raises.

        Returns the names of the sinks it was queued for.
        """
        try:
            wanted = [sink.name for sink in self.active_sinks if sink.wants(event)]
            if wanted:
                self.outbox.enqueue(event, wanted)
                if self._dispatcher is not None:
                    self._dispatcher.wake()
            return wanted
        except Exception:
            # detection must go on whatever happens to notifications
            self.log.exception("Could not queue drift event %s", event.get("id"))
            return []

    def deliver_pending(self, now: float | None = None) -> int:
        """Deliver what is due now, synchronously (for tests and one-shot commands)."""
        return self.dispatcher.deliver_pending(now) if self.active_sinks else 0

    def start(self) -> None:
        """Start background delivery (nothing to do without active sinks)."""
        if self.active_sinks:
            self.dispatcher.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop delivery, close the sinks and the outbox; pending events stay queued."""
        if self._dispatcher is not None:
            self._dispatcher.stop(timeout)
        for sink in self.active_sinks:
            sink.close()
        with self._lock:
            if self._outbox is not None:
                self._outbox.close()
            self._outbox, self._dispatcher = None, None


def notifier_from_config(config: Config | None = None) -> Notifier:
    """A :class:`Notifier` built from traitlets ``config`` (e.g. a server app's ``config``)."""
    return Notifier(config=config if config is not None else Config())
