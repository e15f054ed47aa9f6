"""Event sinks: where a drift event goes (the hub service, SMTP, a webhook, SNS, EventBridge).

Each sink's :meth:`EventSink.deliver` sends one event and raises on any failure; retrying
is the outbox's job, not the sink's. What is sent is built by pure functions
(:func:`make_email`, :func:`make_webhook_payload`, :func:`make_sns_publish_kwargs`,
:func:`make_drift_bus_entry`) that
do no I/O and are tested as whole values; the sinks only orchestrate the sending.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlparse

from traitlets import Bool, Dict, Enum, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

from westtek_core.drift.report import Severity
from westtek_core.labs import SERVER_SEPARATOR
from westtek_core.version import __version__

Event = Mapping[str, Any]

SEVERITIES = ("info", "minor", "critical")
# Slack limits: header text 150 chars, section text 3000, 50 blocks a message.
_SLACK_HEADER_MAX = 150
_SLACK_SECTION_MAX = 3000
_CHANGES_SHOWN = 20
_SNS_SUBJECT_MAX = 99  # SNS: ASCII, no line breaks, fewer than 100 characters
_BUS_CHANGES_MAX = 50

# What infra/lib/alerts-stack.ts's rules match (DRIFT_SOURCE, DRIFT_DETAIL_TYPE); the
# contract test checks an entry made here against the synthesized rules.
DRIFT_EVENT_SOURCE = "westtek.drift"
DRIFT_EVENT_DETAIL_TYPE = "Drift Detected"
# Set on AWS: the stage's drift bus (compute stack) and the server's lab's alert topic
# (the spawner's environment, from hub_config/aws.py).
EVENT_BUS_ENV = "WESTTEK_EVENT_BUS"
ALERT_TOPIC_ENV = "WESTTEK_ALERT_TOPIC_ARN"


class DeliveryError(Exception):
    """A sink could not deliver an event (the outbox retries it later)."""


def event_severity(event: Event) -> Severity:
    """The most severe change an event reports, new or resolved.

    A resolved change counts too: whoever heard of a critical drift hears that it ended.
    An event without changes is ``info``.
    """
    found = [
        Severity(change.get("severity", "info"))
        for key in ("changes", "resolved")
        for change in event.get(key) or ()
    ]
    return max(found, key=lambda s: s.rank, default=Severity.INFO)


def _environment(event: Event) -> str:
    return str(event.get("environment_id") or "unnamed environment")


def describe_change(change: Mapping[str, Any]) -> str:
    """One line for a change: ``package numpy upgraded 1.26.4 -> 2.0.0``."""
    before, after = change.get("before"), change.get("after")
    text = f"{change.get('kind', 'change')} {change.get('name', '?')} {change.get('change', '')}"
    if before and after:
        text += f" {before} -> {after}"
    elif before or after:
        text += f" ({before or after})"
    return text


def event_summary(event: Event) -> str:
    """A one-line summary: the first change and how many more, or what was resolved."""
    changes, resolved = list(event.get("changes") or ()), list(event.get("resolved") or ())
    if changes:
        text = describe_change(changes[0])
        return text + (f" (+{len(changes) - 1} more)" if len(changes) > 1 else "")
    if resolved:
        names = ", ".join(str(c.get("name", "?")) for c in resolved[:3])
        more = f" (+{len(resolved) - 3} more)" if len(resolved) > 3 else ""
        return f"{len(resolved)} change(s) resolved: {names}{more}"
    return "no changes"


def event_subject(event: Event) -> str:
    """``[West Tek] CRITICAL_DRIFT in <env>: <summary>``."""
    return f"[West Tek] {event.get('status', 'DRIFT')} in {_environment(event)}: " + event_summary(
        event
    )


def _event_time(event: Event) -> str:
    moment = event.get("time")
    if not isinstance(moment, (int, float)):
        return "unknown time"
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def event_text(event: Event) -> str:
    """The plain-text body: each change's severity, reason and affected notebooks."""
    lines = [
        f"West Tek detected {event.get('status', 'drift')} in {_environment(event)}"
        f" (baseline {event.get('baseline') or 'unknown'}).",
        f"Event {event.get('id', '?')} at {_event_time(event)}.",
    ]
    for title, key in (("Changes", "changes"), ("Resolved", "resolved")):
        changes = list(event.get(key) or ())
        if not changes:
            continue
        lines += ["", f"{title}:"]
        for change in changes:
            lines.append(f"- [{change.get('severity', 'info')}] {describe_change(change)}")
            if change.get("reason"):
                lines.append(f"    reason: {change['reason']}")
            notebooks = change.get("affected_notebooks") or []
            lines.append(f"    affects: {', '.join(notebooks) if notebooks else 'no notebook'}")
    return "\n".join(lines) + "\n"


def make_email(event: Event, sender: str, to: list[str]) -> EmailMessage:
    """The notification email for one event (no I/O)."""
    message = EmailMessage()
    message["Subject"] = event_subject(event)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="westtek.invalid")
    message["X-WestTek-Event"] = f"{_environment(event)}/{event.get('id', '')}"
    message.set_content(event_text(event))
    return message


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def make_webhook_payload(event: Event) -> dict[str, Any]:
    """Slack-compatible JSON: ``text`` as the fallback, ``blocks`` with one section a change."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _clip(
                    f"{event.get('status', 'DRIFT')} in {_environment(event)}", _SLACK_HEADER_MAX
                ),
            },
        }
    ]
    shown = 0
    for key in ("changes", "resolved"):
        for change in event.get(key) or ():
            if shown == _CHANGES_SHOWN:
                break
            shown += 1
            text = f"*{change.get('severity', 'info')}* {_slack_escape(describe_change(change))}"
            if key == "resolved":
                text = "resolved: " + text
            if change.get("reason"):
                text += f"\n{_slack_escape(str(change['reason']))}"
            notebooks = change.get("affected_notebooks") or []
            if notebooks:
                text += "\naffects: " + ", ".join(f"`{_slack_escape(n)}`" for n in notebooks)
            section = {"type": "mrkdwn", "text": _clip(text, _SLACK_SECTION_MAX)}
            blocks.append({"type": "section", "text": section})
    total = len(event.get("changes") or ()) + len(event.get("resolved") or ())
    context = f"event {event.get('id', '?')} · baseline {event.get('baseline') or 'unknown'}"
    if total > shown:
        context += f" · {total - shown} more change(s) not shown"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": _clip(event_subject(event), _SLACK_SECTION_MAX), "blocks": blocks}


def make_sns_publish_kwargs(event: Event, topic_arn: str) -> dict[str, Any]:
    """Keyword arguments for ``sns.publish``: the event as JSON, an ASCII subject < 100 chars.

    Message attributes (status, severity, environment) let subscriptions filter events.
    """
    subject = event_subject(event).replace("→", "->").encode("ascii", "replace").decode()
    attributes = {
        "status": str(event.get("status") or "UNKNOWN"),
        "severity": event_severity(event).value,
        "environment_id": str(event.get("environment_id") or ""),
    }
    return {
        "TopicArn": topic_arn,
        "Subject": _clip(" ".join(subject.split()), _SNS_SUBJECT_MAX).replace("…", "~"),
        "Message": json.dumps(dict(event), sort_keys=True, default=str),
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value}
            for name, value in attributes.items()
            if value  # SNS rejects empty attribute values
        },
    }


def researcher_of(environment_id: str) -> str:
    """The researcher an environment id belongs to (its owner: the part before ':')."""
    return environment_id.partition(SERVER_SEPARATOR)[0]


def make_drift_bus_entry(event: Event, event_bus: str) -> dict[str, Any]:
    """An EventBridge ``PutEvents`` entry for a drift event: what infra's rules match.

    ``detail`` is the event's summary (infra/README.md, "Drift events"); changes beyond
    :data:`_BUS_CHANGES_MAX` are counted, not listed, to stay under the 256 KB entry limit.
    """
    environment = str(event.get("environment_id") or "")
    changes = list(event.get("changes") or ())
    detail = {
        "status": str(event.get("status") or "UNKNOWN"),
        "severity": event_severity(event).value,
        "lab_id": str(event.get("lab_id") or ""),
        "researcher_id": researcher_of(environment),
        "environment_id": environment,
        "baseline": event.get("baseline"),
        "event_id": event.get("id"),
        "changes": changes[:_BUS_CHANGES_MAX],
        "changes_total": len(changes),
    }
    return {
        "Source": DRIFT_EVENT_SOURCE,
        "DetailType": DRIFT_EVENT_DETAIL_TYPE,
        "Detail": json.dumps(detail, sort_keys=True, default=str),
        "EventBusName": event_bus,
    }


def post_json(url: str, body: Any, headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body`` as JSON; return the status, raise :class:`DeliveryError` unless 2xx."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body, default=str).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"westtek/{__version__}",
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"POST {url} answered {exc.code} {exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise DeliveryError(f"POST {url} failed: {exc}") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"POST {url} answered {status}")
    return status


class EventSink(LoggingConfigurable):
    """Where drift events go; :meth:`deliver` sends one event or raises."""

    name = Unicode(
        config=True,
        help="The sink's name in the outbox (unique among the configured sinks); default: "
        "its kind, e.g. 'webhook'. Renaming a sink orphans its undelivered events.",
    )

    @default("name")
    def _default_name(self) -> str:
        return type(self).__name__.removesuffix("Sink").lower() or "sink"

    min_severity = Enum(
        SEVERITIES,
        "minor",
        config=True,
        help="Deliver only events whose most severe change (new or resolved) is at least "
        "this: info, minor or critical.",
    )
    timeout = Float(10.0, config=True, help="Seconds to wait for the destination to answer.")

    @property
    def enabled(self) -> bool:
        """Whether the sink is configured enough to deliver; disabled sinks get nothing."""
        return True

    takes_reports = False
    """Whether the sink also takes ``report`` messages (snapshot metadata for the hub)."""

    def wants(self, event: Event) -> bool:
        """Whether this sink's severity threshold lets ``event`` through."""
        if event.get("report"):
            return self.takes_reports
        return event_severity(event).rank >= Severity(self.min_severity).rank

    def deliver(self, event: Event) -> None:
        """Send one event; raise (any exception) when it was not delivered."""
        raise NotImplementedError

    def close(self) -> None:
        """Release clients or connections."""


class SmtpSink(EventSink):
    """Email each event through an SMTP server."""

    host = Unicode("", config=True, help="SMTP server host name; empty disables the sink.")
    port = Integer(
        0,
        config=True,
        help="SMTP server port; 0 means 465 with use_ssl, 587 with starttls, else 25.",
    )
    use_ssl = Bool(False, config=True, help="Connect with implicit TLS (SMTPS, usually port 465).")
    starttls = Bool(False, config=True, help="Upgrade the connection with STARTTLS before login.")
    username = Unicode("", config=True, help="SMTP login user; empty sends without login.")
    password = Unicode("", config=True, help="SMTP login password.")
    sender = Unicode(
        "westtek@localhost", config=True, help="The From address of notification emails."
    )
    to = List(Unicode(), config=True, help="Recipient addresses; empty disables the sink.")

    @property
    def enabled(self) -> bool:
        """Enabled once a host and at least one recipient are configured."""
        return bool(self.host and self.to)

    def deliver(self, event: Event) -> None:
        """Send the event's email; SMTP errors propagate."""
        message = make_email(event, self.sender, list(self.to))
        port = self.port or (465 if self.use_ssl else 587 if self.starttls else 25)
        smtp_class = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
        with smtp_class(self.host, port, timeout=self.timeout) as smtp:
            if self.starttls and not self.use_ssl:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


class WebhookSink(EventSink):
    """POST each event as Slack-compatible JSON (``text`` and ``blocks``) to a URL."""

    url = Unicode(
        "", config=True, help="Webhook URL (e.g. a Slack incoming webhook); empty disables it."
    )
    headers = Dict(
        value_trait=Unicode(),
        config=True,
        help="Extra HTTP headers sent with each POST, e.g. an Authorization header.",
    )

    @property
    def enabled(self) -> bool:
        """Enabled once a URL is configured."""
        return bool(self.url)

    def deliver(self, event: Event) -> None:
        """POST the Slack payload; any non-2xx answer raises."""
        post_json(self.url, make_webhook_payload(event), self.headers, self.timeout)


class AwsSink(EventSink):
    """A sink that calls an AWS service through the suite's shared boto3 clients."""

    service_name = ""
    """The boto3 service (``sns``, ``events``)."""

    region = Unicode(
        None,
        allow_none=True,
        config=True,
        help="AWS region; default: $AWS_REGION or $AWS_DEFAULT_REGION, else the target ARN's.",
    )
    endpoint_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Service endpoint (moto or a VPC endpoint); default: $AWS_ENDPOINT_URL_<SERVICE> "
        "or $AWS_ENDPOINT_URL, else AWS.",
    )

    def target_arn(self) -> str:
        """The ARN delivered to (its region is the default region)."""
        return ""

    @default("region")
    def _default_region(self) -> str | None:
        parts = self.target_arn().split(":")
        from_arn = parts[3] if len(parts) > 3 and parts[3] else None
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or from_arn

    @default("endpoint_url")
    def _default_endpoint_url(self) -> str | None:
        specific = f"AWS_ENDPOINT_URL_{self.service_name.upper()}"
        return os.environ.get(specific) or os.environ.get("AWS_ENDPOINT_URL")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The boto3 client, built once; no botocore retries (the outbox retries)."""
        with self._client_lock:
            if self._client is None:
                from botocore.config import Config

                from westtek_core.aws import aws_client

                config = Config(
                    connect_timeout=self.timeout,
                    read_timeout=self.timeout,
                    retries={"max_attempts": 1, "mode": "standard"},
                )
                self._client = aws_client(
                    self.service_name,
                    region_name=self.region,
                    endpoint_url=self.endpoint_url or None,
                    config=config,
                )
            return self._client

    def close(self) -> None:
        """Close the client's connection pool."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


class SnsSink(AwsSink):
    """Publish each critical event's JSON to an Amazon SNS topic (people subscribe to it)."""

    service_name = "sns"
    topic_arn = Unicode(
        config=True,
        help="ARN of the SNS topic; default: $WESTTEK_ALERT_TOPIC_ARN (on AWS the spawner "
        "sets the server's lab's alert topic); empty disables the sink.",
    )

    @default("topic_arn")
    def _default_topic_arn(self) -> str:
        return os.environ.get(ALERT_TOPIC_ENV, "")

    # e-mail and SMS reach people: only what needs them at once, by default
    min_severity = Enum(
        SEVERITIES,
        "critical",
        config=True,
        help="Deliver only events whose most severe change is at least this "
        "(info, minor or critical).",
    )

    def target_arn(self) -> str:
        """The topic."""
        return self.topic_arn

    @property
    def enabled(self) -> bool:
        """Enabled once a topic ARN is configured."""
        return bool(self.topic_arn)

    def deliver(self, event: Event) -> None:
        """``sns.publish`` the event; client errors propagate."""
        self.client.publish(**make_sns_publish_kwargs(event, self.topic_arn))


class EventBridgeSink(AwsSink):
    """Put each drift event on an Amazon EventBridge bus, for the stack's rules and alarm."""

    service_name = "events"
    event_bus = Unicode(
        config=True,
        help="Name or ARN of the event bus; default: $WESTTEK_EVENT_BUS (set on AWS); empty "
        "disables the sink.",
    )

    @default("event_bus")
    def _default_event_bus(self) -> str:
        return os.environ.get(EVENT_BUS_ENV, "")

    def target_arn(self) -> str:
        """The bus, when given as an ARN."""
        return self.event_bus if self.event_bus.startswith("arn:") else ""

    @property
    def enabled(self) -> bool:
        """Enabled once a bus is configured."""
        return bool(self.event_bus)

    def deliver(self, event: Event) -> None:
        """``events.put_events`` the event; a rejected entry raises :class:`DeliveryError`."""
        answer = self.client.put_events(Entries=[make_drift_bus_entry(event, self.event_bus)])
        if answer.get("FailedEntryCount"):
            failed = answer["Entries"][0]
            raise DeliveryError(
                f"EventBridge refused the event: {failed.get('ErrorCode')} "
                f"{failed.get('ErrorMessage', '')}".strip()
            )


class HubSink(EventSink):
    """Forward each event's raw JSON to the West Tek hub service, under JupyterHub only.

    The single-user server's ``$JUPYTERHUB_API_TOKEN`` authenticates it as its user.
    """

    min_severity = Enum(
        SEVERITIES,
        "info",
        config=True,
        help="Forward only events at least this severe; the hub keeps every event by default.",
    )
    service_name = Unicode(
        "westtek", config=True, help="Name of the West Tek service in the hub's configuration."
    )
    hub_url = Unicode(
        config=True,
        help="Origin of the hub's public proxy as the server reaches it; default: "
        "$JUPYTERHUB_URL, else the origin of $JUPYTERHUB_PUBLIC_HUB_URL, else "
        "http://127.0.0.1:8000 (JupyterHub's default).",
    )
    base_url = Unicode(
        config=True, help="The hub's base URL path; default: $JUPYTERHUB_BASE_URL, else '/'."
    )
    url = Unicode(
        config=True,
        help="Where events are POSTed; default: {hub_url}{base_url}services/{service_name}"
        "/api/events.",
    )
    api_token = Unicode(
        config=True,
        help="JupyterHub API token sent as 'Authorization: token ...'; default: "
        "$JUPYTERHUB_API_TOKEN. Empty (not under JupyterHub) disables the sink.",
    )

    @default("hub_url")
    def _default_hub_url(self) -> str:
        configured = os.environ.get("JUPYTERHUB_URL") or os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL")
        if configured:
            parsed = urlparse(configured)
            if parsed.scheme and parsed.netloc:
                return f"{parsed.scheme}://{parsed.netloc}"
        return "http://127.0.0.1:8000"

    @default("base_url")
    def _default_base_url(self) -> str:
        return os.environ.get("JUPYTERHUB_BASE_URL") or "/"

    @default("url")
    def _default_url(self) -> str:
        base = "/" + self.base_url.strip("/") + "/" if self.base_url.strip("/") else "/"
        return f"{self.hub_url.rstrip('/')}{base}services/{self.service_name}/api/events"

    @default("api_token")
    def _default_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @property
    def enabled(self) -> bool:
        """Enabled when running under JupyterHub (an API token is known)."""
        return bool(self.api_token and self.url)

    @property
    def api_base(self) -> str:
        """The hub service's API, where ``events`` (and every other route) lives."""
        return self.url.rsplit("/", 1)[0]

    takes_reports = True

    def deliver(self, event: Event) -> None:
        """POST the event as it is (a snapshot report to ``api/snapshots``); non-2xx raises."""
        url = self.url
        if event.get("report") == "snapshot":
            url = self.api_base + "/snapshots"
        post_json(url, dict(event), {"Authorization": f"token {self.api_token}"}, self.timeout)


SINK_ALIASES: dict[str, type[EventSink]] = {
    "hub": HubSink,
    "smtp": SmtpSink,
    "email": SmtpSink,
    "webhook": WebhookSink,
    "slack": WebhookSink,
    "sns": SnsSink,
    "eventbridge": EventBridgeSink,
}
