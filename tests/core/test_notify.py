"""Drift notifications: real SMTP, webhook and SNS (moto) receivers on 127.0.0.1.

Every sink is exercised against a real server; a sink that is down or hangs never blocks
publishing, and its events are delivered, in order, once it is back, even by a new process.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import logging
import queue
import secrets
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError
from traitlets.config import Config

from tests.conftest import free_port
from tests.loopback import allow_only_loopback
from westtek_core.capture import capture_environment
from westtek_core.drift.events import EventLog
from westtek_core.drift.watch import DriftWatcher
from westtek_core.notify import (
    Dispatcher,
    EventSink,
    HubSink,
    Notifier,
    Outbox,
    WebhookSink,
    event_severity,
    event_subject,
    event_text,
    make_drift_bus_entry,
    make_sns_publish_kwargs,
    make_webhook_payload,
    notifier_from_config,
)
from westtek_core.notify.sinks import DRIFT_EVENT_DETAIL_TYPE, DRIFT_EVENT_SOURCE
from westtek_core.snapshot import create_snapshot, load_snapshot
from westtek_core.store import Repository

_HUB_ENV = (
    "JUPYTERHUB_API_TOKEN",
    "JUPYTERHUB_URL",
    "JUPYTERHUB_PUBLIC_HUB_URL",
    "JUPYTERHUB_BASE_URL",
)


@pytest.fixture(autouse=True)
def _loopback_only_and_private_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    """No notification test may dial anything but loopback, nor write the real data dir."""
    allow_only_loopback(monkeypatch, "notify test")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    for name in _HUB_ENV:
        monkeypatch.delenv(name, raising=False)
    yield


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def change(name: str, severity: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "package",
        "name": name,
        "change": "upgraded",
        "before": "1.0.0",
        "after": "2.0.0",
        "severity": severity,
        "affected_notebooks": ["analysis.ipynb"],
        "reason": f"{name} 1.0.0 → 2.0.0 breaks analysis.ipynb",
    } | extra


def drift_event(event_id: int, severity: str = "critical", **extra: Any) -> dict[str, Any]:
    status = {"info": "STABLE", "minor": "MINOR_DRIFT", "critical": "CRITICAL_DRIFT"}[severity]
    return {
        "id": event_id,
        "time": 1_790_000_000.0 + event_id,
        "environment_id": "alice-env",
        "baseline": "snap-0123",
        "status": status,
        "changes": [change(f"pkg{event_id}", severity)],
        "resolved": [],
    } | extra


# --- receivers ------------------------------------------------------------------------


class SmtpReceiver(socketserver.ThreadingTCPServer):
    """A small real SMTP server: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpSession)
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.logins: list[tuple[str, str]] = []
        self.port = self.server_address[1]


class _SmtpSession(socketserver.StreamRequestHandler):
    server: SmtpReceiver

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        sender, recipients = "", []
        self.reply("220 127.0.0.1 test ESMTP")
        while line := self.rfile.readline():
            verb, _, argument = line.decode().strip().partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-127.0.0.1\r\n250-AUTH PLAIN\r\n250 8BITMIME")
            elif verb == "AUTH":
                _, user, password = base64.b64decode(argument.split()[1]).decode().split("\0")
                self.server.logins.append((user, password))
                self.reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                sender = argument.split(":", 1)[1].split()[0].strip("<>")
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(argument.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                self.server.messages.append((sender, recipients, message))  # type: ignore[arg-type]
                sender, recipients = "", []
                self.reply("250 OK queued")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("250 OK")


@pytest.fixture
def smtp_server() -> Iterator[SmtpReceiver]:
    server = SmtpReceiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


class WebhookReceiver:
    """A real HTTP server recording POSTs; answers the scripted statuses, then 200.

    While ``gate`` is clear, requests are held (a sink that hangs).
    """

    def __init__(self, statuses: list[int] | None = None, port: int = 0) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.gate = threading.Event()
        self.gate.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.gate.wait(10)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.received.append((status, body, dict(self.headers)))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self.thread.start()

    def delivered(self) -> list[dict[str, Any]]:
        """Bodies answered with 2xx, in arrival order."""
        return [body for status, body, _ in self.received if 200 <= status < 300]

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def webhooks() -> Iterator[Callable[..., WebhookReceiver]]:
    started: list[WebhookReceiver] = []

    def start(statuses: list[int] | None = None, port: int = 0) -> WebhookReceiver:
        receiver = WebhookReceiver(statuses, port)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture
def notifiers(tmp_path: Path) -> Iterator[Callable[..., Notifier]]:
    """Build Notifiers from config dicts (outbox in tmp_path); all stopped at the end."""
    built: list[Notifier] = []

    def build(config: dict[str, Any] | None = None, **kwargs: Any) -> Notifier:
        kwargs.setdefault("outbox_path", str(tmp_path / "outbox.sqlite3"))
        notifier = Notifier(config=Config(config or {}), **kwargs)
        built.append(notifier)
        return notifier

    yield build
    for notifier in built:
        notifier.stop()


def webhook_config(url: str, **dispatcher: float) -> dict[str, Any]:
    return {
        "Notifier": {"sinks": ["webhook"]},
        "WebhookSink": {"url": url, "timeout": 2.0},
        "Dispatcher": {"initial_delay": 0.05, "max_delay": 0.2, "poll_interval": 0.5} | dispatcher,
    }


# --- pure builders -----------------------------------------------------------------------


def test_an_events_severity_is_its_most_severe_change_new_or_resolved():
    assert event_severity(drift_event(1, "minor")).value == "minor"
    resolved_critical = drift_event(2, "info", resolved=[change("numpy", "critical")])
    assert event_severity(resolved_critical).value == "critical"
    assert event_severity({"changes": [], "resolved": []}).value == "info"


def test_subject_and_text_name_status_environment_changes_reasons_and_notebooks():
    event = drift_event(7, changes=[change("numpy", "critical"), change("pandas", "minor")])
    assert event_subject(event) == (
        "[West Tek] CRITICAL_DRIFT in alice-env: package numpy upgraded 1.0.0 -> 2.0.0 (+1 more)"
    )
    text = event_text(event)
    assert "West Tek detected CRITICAL_DRIFT in alice-env (baseline snap-0123)." in text
    assert "- [critical] package numpy upgraded 1.0.0 -> 2.0.0" in text
    assert "    reason: numpy 1.0.0 → 2.0.0 breaks analysis.ipynb" in text
    assert "- [minor] package pandas upgraded 1.0.0 -> 2.0.0" in text
    assert "    affects: analysis.ipynb" in text


def test_the_webhook_payload_is_slack_compatible():
    event = drift_event(3, resolved=[change("scipy", "minor", affected_notebooks=[])])
    assert make_webhook_payload(event) == {
        "text": "[West Tek] CRITICAL_DRIFT in alice-env: package pkg3 upgraded 1.0.0 -> 2.0.0",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "CRITICAL_DRIFT in alice-env"},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*critical* package pkg3 upgraded 1.0.0 -&gt; 2.0.0\n"
                    "pkg3 1.0.0 → 2.0.0 breaks analysis.ipynb\naffects: `analysis.ipynb`",
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "resolved: *minor* package scipy upgraded 1.0.0 -&gt; 2.0.0\n"
                    "scipy 1.0.0 → 2.0.0 breaks analysis.ipynb",
                },
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "event 3 · baseline snap-0123"}],
            },
        ],
    }


def test_sns_kwargs_carry_the_event_json_and_an_ascii_subject_under_100_chars():
    event = drift_event(4, environment_id="é" * 5 + "x" * 200)
    kwargs = make_sns_publish_kwargs(event, "arn:aws:sns:us-east-1:123456789012:drift")
    assert json.loads(kwargs["Message"]) == event
    assert kwargs["TopicArn"] == "arn:aws:sns:us-east-1:123456789012:drift"
    assert len(kwargs["Subject"]) < 100 and kwargs["Subject"].isascii()
    assert kwargs["Subject"].startswith("[West Tek] CRITICAL_DRIFT in ?????xxx")
    assert kwargs["MessageAttributes"]["severity"] == {
        "DataType": "String",
        "StringValue": "critical",
    }
    unnamed = make_sns_publish_kwargs(drift_event(5, environment_id=""), "arn")
    assert "environment_id" not in unnamed["MessageAttributes"]  # SNS rejects empty values


# --- configuration -----------------------------------------------------------------------


def test_sinks_come_from_config_and_unconfigured_ones_are_skipped(notifiers):
    notifier = notifiers(
        {
            "Notifier": {"sinks": ["hub", "smtp", "webhook", "westtek_core.notify.SnsSink"]},
            "WebhookSink": {"url": "http://127.0.0.1:9/hook", "min_severity": "critical"},
            "SmtpSink": {"host": "127.0.0.1"},  # no recipients: disabled
        }
    )
    assert [type(s) for s in notifier.active_sinks] == [WebhookSink]
    assert notifier.active_sinks[0].min_severity == "critical"


def test_by_default_events_go_to_the_hub_under_jupyterhub_and_nowhere_else(monkeypatch):
    assert notifier_from_config(None).active_sinks == []
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    assert [type(s) for s in notifier_from_config(None).active_sinks] == [HubSink]


def test_two_sinks_of_one_kind_need_distinct_names(notifiers):
    first = WebhookSink(name="lab", url="http://127.0.0.1:9/a")
    second = WebhookSink(name="ops", url="http://127.0.0.1:9/b")
    assert [s.name for s in notifiers(sinks=[first, second]).active_sinks] == ["lab", "ops"]
    with pytest.raises(TraitError, match="duplicate"):
        notifiers(sinks=[first, WebhookSink(name="lab", url="http://127.0.0.1:9/c")])
    with pytest.raises(TraitError, match="EventSink"):
        notifiers(sinks=[dict])


def test_the_hub_sink_is_on_only_under_jupyterhub(monkeypatch):
    assert not HubSink().enabled
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/jhub/")
    monkeypatch.setenv("JUPYTERHUB_PUBLIC_HUB_URL", "https://hub.example.org/jhub/hub/")
    sink = HubSink()
    assert sink.enabled and sink.min_severity == "info"
    assert sink.url == "https://hub.example.org/jhub/services/westtek/api/events"
    monkeypatch.setenv("JUPYTERHUB_URL", "http://127.0.0.1:8000")
    monkeypatch.delenv("JUPYTERHUB_BASE_URL")
    assert HubSink().url == "http://127.0.0.1:8000/services/westtek/api/events"


def test_events_are_queued_only_for_sinks_whose_threshold_they_reach(notifiers, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    notifier = notifiers(
        {
            "Notifier": {"sinks": ["hub", "webhook", "smtp"]},
            "WebhookSink": {"url": "http://127.0.0.1:9/hook", "min_severity": "critical"},
            "SmtpSink": {"host": "127.0.0.1", "to": ["pi@lab.example"]},  # minor by default
        }
    )
    assert notifier.publish(drift_event(1, "info")) == ["hub"]
    assert notifier.publish(drift_event(2, "minor")) == ["hub", "smtp"]
    assert notifier.publish(drift_event(3, "critical")) == ["hub", "webhook", "smtp"]
    queued = {(e.sink, e.event["id"]) for e in notifier.outbox.entries(state="pending")}
    assert queued == {("hub", 1), ("hub", 2), ("smtp", 2), ("hub", 3), ("webhook", 3), ("smtp", 3)}


def test_nothing_is_written_while_no_sink_is_active(notifiers, tmp_path):
    notifier = notifiers()  # the default hub sink, outside JupyterHub
    assert notifier.active_sinks == []
    assert notifier.publish(drift_event(1)) == []
    assert not (tmp_path / "outbox.sqlite3").exists()


def test_publish_never_raises(notifiers, tmp_path, caplog):
    (tmp_path / "a-file").write_text("")
    notifier = notifiers(
        webhook_config("http://127.0.0.1:9/hook"),
        outbox_path=str(tmp_path / "a-file" / "outbox.sqlite3"),  # cannot be created
    )
    with caplog.at_level(logging.ERROR):
        assert notifier.publish(drift_event(1)) == []
    assert "Could not queue drift event 1" in caplog.text


# --- sinks against real servers ------------------------------------------------------------


def test_smtp_sink_emails_the_event(notifiers, smtp_server):
    notifier = notifiers(
        {
            "Notifier": {"sinks": ["smtp"]},
            "SmtpSink": {
                "host": "127.0.0.1",
                "port": smtp_server.port,
                "username": "westtek",
                "password": "s3cret",
                "sender": "westtek@lab.example",
                "to": ["pi@lab.example", "it@lab.example"],
            },
        }
    )
    assert notifier.publish(drift_event(9)) == ["smtp"]
    assert notifier.deliver_pending() == 1
    (sender, recipients, message) = smtp_server.messages[0]
    assert (sender, recipients) == ("westtek@lab.example", ["pi@lab.example", "it@lab.example"])
    assert smtp_server.logins == [("westtek", "s3cret")]
    # (Python folds a long subject starting with "[" onto the next line; unfolding keeps
    # the fold's space, which mail clients drop)
    assert message["Subject"].strip() == (
        "[West Tek] CRITICAL_DRIFT in alice-env: package pkg9 upgraded 1.0.0 -> 2.0.0"
    )
    body = message.get_content()
    assert "- [critical] package pkg9 upgraded 1.0.0 -> 2.0.0" in body
    assert "reason: pkg9 1.0.0 → 2.0.0 breaks analysis.ipynb" in body
    assert "affects: analysis.ipynb" in body


def test_a_failing_webhook_is_retried_with_backoff_and_order_is_kept(notifiers, webhooks):
    receiver = webhooks([500])
    notifier = notifiers(webhook_config(receiver.url, initial_delay=10.0, max_delay=60.0))
    notifier.publish(drift_event(1))
    notifier.publish(drift_event(2))
    start = time.time()
    # Given the first POST answers 500, nothing is delivered and event 2 waits behind event 1
    assert notifier.deliver_pending(start) == 0
    assert [(status, body["text"][-40:]) for status, body, _ in receiver.received] == [
        (500, "CRITICAL_DRIFT in alice-env: package pkg1 upgraded 1.0.0 -> 2.0.0"[-40:])
    ]
    head = notifier.outbox.entries(state="pending")[0]
    assert (head.attempts, head.next_attempt) == (1, pytest.approx(start + 10.0))
    assert "500" in (head.last_error or "")
    # not due yet: no request at all
    assert notifier.deliver_pending(start + 5.0) == 0 and len(receiver.received) == 1
    # once due, both go, in order
    assert notifier.deliver_pending(start + 10.0) == 2
    assert [b["blocks"][1]["text"]["text"][:25] for b in receiver.delivered()] == [
        "*critical* package pkg1 u",
        "*critical* package pkg2 u",
    ]
    assert notifier.outbox.entries(state="pending") == []


def test_backoff_doubles_up_to_the_cap():
    outbox_less = Dispatcher(None, [], initial_delay=1.0, max_delay=5.0)  # type: ignore[arg-type]
    assert [outbox_less.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


class RefusingSink(EventSink):
    """A sink that is always down."""

    def deliver(self, event: Any) -> None:
        raise ConnectionRefusedError("down")


def test_events_older_than_max_age_are_given_up_and_logged(tmp_path, caplog):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    dispatcher = Dispatcher(outbox, [RefusingSink(name="down")], initial_delay=1.0, max_age=60.0)
    outbox.enqueue(drift_event(1), ["down"], now=1000.0)
    outbox.enqueue(drift_event(2), ["down"], now=1030.0)
    assert dispatcher.deliver_pending(1000.0) == 0
    with caplog.at_level(logging.ERROR):
        dispatcher.deliver_pending(1065.0)  # event 1 is now too old; event 2 is not
    assert "Giving up on event 1 for sink down after 2 attempts" in caplog.text
    dead, pending = outbox.entries(state="dead"), outbox.entries(state="pending")
    assert [e.event["id"] for e in dead] == [1] and [e.event["id"] for e in pending] == [2]
    assert pending[0].attempts == 1  # the queue moved on to event 2 at once
    outbox.close()


def test_the_same_event_is_queued_once_per_sink(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    assert outbox.enqueue(drift_event(1), ["a", "b"]) == 2
    assert outbox.enqueue(drift_event(1), ["a", "b"]) == 0
    assert outbox.enqueue(drift_event(1, "minor"), ["a"]) == 1  # different content
    outbox.close()


def test_a_claimed_event_is_not_sent_by_another_process_until_the_lease_ends(tmp_path):
    first, second = Outbox(tmp_path / "o.sqlite3"), Outbox(tmp_path / "o.sqlite3")
    first.enqueue(drift_event(1), ["hook"], now=100.0)
    assert first.claim_next("hook", 100.0, lease=30.0) is not None
    assert second.claim_next("hook", 110.0, lease=30.0) is None  # in flight elsewhere
    reclaimed = second.claim_next("hook", 130.0, lease=30.0)  # the first one crashed
    assert reclaimed is not None and reclaimed.event["id"] == 1
    first.close()
    second.close()


def test_sns_sink_publishes_the_event_json(notifiers, moto_endpoint, monkeypatch, tmp_path):
    import boto3

    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL_SNS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # the trait below must win
    }.items():
        monkeypatch.setenv(name, value)
    name = f"westtek-drift-{secrets.token_hex(4)}"
    sns = boto3.client("sns", endpoint_url=moto_endpoint)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    notifier = notifiers(
        {
            "Notifier": {"sinks": ["sns"]},
            "SnsSink": {"topic_arn": topic, "endpoint_url": moto_endpoint},
        }
    )
    assert notifier.publish(drift_event(11)) == ["sns"]
    assert notifier.deliver_pending() == 1
    (message,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert json.loads(envelope["Message"]) == drift_event(11)
    assert envelope["Subject"] == (
        "[West Tek] CRITICAL_DRIFT in alice-env: package pkg11 upgraded 1.0.0 -> 2.0.0"
    )
    assert envelope["MessageAttributes"]["status"]["Value"] == "CRITICAL_DRIFT"
    sns.close()
    sqs.close()


def test_eventbridge_sink_puts_drift_on_the_bus_for_its_rules(
    notifiers, moto_endpoint, monkeypatch, tmp_path
):
    import boto3

    from tests.loopback import use_dummy_aws

    use_dummy_aws(monkeypatch, tmp_path, moto_endpoint)
    # Given the stage's bus (named by the environment, as on AWS) with a rule for critical drift
    bus = f"westtek-{secrets.token_hex(4)}"
    monkeypatch.setenv("WESTTEK_EVENT_BUS", bus)
    events = boto3.client("events", endpoint_url=moto_endpoint)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=bus)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    pattern = {
        "source": [DRIFT_EVENT_SOURCE],
        "detail-type": [DRIFT_EVENT_DETAIL_TYPE],
        "detail": {"status": ["CRITICAL_DRIFT"]},
    }
    events.put_rule(Name="critical", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="critical",
        EventBusName=bus,
        Targets=[{"Id": "queue", "Arn": queue_arn["Attributes"]["QueueArn"]}],
    )
    # when a critical drift event is published with the default sinks,
    notifier = notifiers({})
    assert "eventbridge" in notifier.publish(drift_event(12) | {"lab_id": "vault-13"})
    notifier.deliver_pending()
    # the rule matched it, and its detail is the summary the stack's alert message reads
    (message,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert detail["status"] == "CRITICAL_DRIFT"
    assert detail["lab_id"] == "vault-13"
    assert detail["environment_id"] == "alice-env"
    assert detail["researcher_id"] == "alice-env"
    assert detail["changes_total"] == 1
    events.close()
    sqs.close()


def test_a_drift_bus_entry_lists_at_most_50_changes_and_names_the_researcher():
    event = drift_event(1) | {"environment_id": "alice:gpu", "lab_id": "vault-13"}
    event["changes"] = event["changes"] * 80
    entry = make_drift_bus_entry(event, "westtek-prod")
    assert entry["Source"] == "westtek.drift" and entry["DetailType"] == "Drift Detected"
    assert entry["EventBusName"] == "westtek-prod"
    detail = json.loads(entry["Detail"])
    assert detail["researcher_id"] == "alice" and detail["environment_id"] == "alice:gpu"
    assert len(detail["changes"]) == 50 and detail["changes_total"] == 80


def test_hub_sink_posts_the_raw_event_with_the_server_token(notifiers, webhooks, monkeypatch):
    receiver = webhooks()
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    monkeypatch.setenv("JUPYTERHUB_URL", f"http://127.0.0.1:{receiver.port}")
    notifier = notifiers()  # the default: the hub sink
    assert notifier.publish(drift_event(1, "info")) == ["hub"]
    assert notifier.deliver_pending() == 1
    ((status, body, headers),) = receiver.received
    assert body == drift_event(1, "info")
    assert headers["Authorization"] == "token server-token"
    assert status == 200


# --- never blocking, surviving restarts --------------------------------------------------------


def test_a_sink_that_is_down_never_blocks_publish_and_gets_its_events_when_back(
    notifiers, webhooks
):
    port = free_port()  # nothing listens: connection refused
    notifier = notifiers(webhook_config(f"http://127.0.0.1:{port}/hook"))
    notifier.start()
    # When events are published while the sink is down, each publish returns at once
    for event_id in range(1, 21):
        started = time.perf_counter()
        assert notifier.publish(drift_event(event_id)) == ["webhook"]
        assert time.perf_counter() - started < 0.25
    wait_until(lambda: notifier.outbox.entries(state="pending")[0].attempts >= 2)
    # and once the sink comes back, every event arrives, in order.
    receiver = webhooks(port=port)
    wait_until(lambda: len(receiver.delivered()) == 20)
    ids = [int(body["blocks"][1]["text"]["text"].split()[2][3:]) for body in receiver.delivered()]
    assert ids == list(range(1, 21))


def test_a_hanging_sink_delays_only_itself(notifiers, webhooks):
    stuck, healthy = webhooks(), webhooks()
    stuck.gate.clear()  # holds every request
    notifier = notifiers(
        {
            "Notifier": {
                "sinks": [
                    WebhookSink(name="stuck", url=stuck.url, timeout=5.0),
                    WebhookSink(name="healthy", url=healthy.url, timeout=5.0),
                ]
            }
        }
    )
    notifier.start()
    started = time.perf_counter()
    for event_id in (1, 2, 3):
        notifier.publish(drift_event(event_id))
    assert time.perf_counter() - started < 0.5
    wait_until(lambda: len(healthy.delivered()) == 3)
    assert stuck.received == []
    stuck.gate.set()
    wait_until(lambda: len(stuck.delivered()) == 3)


def test_pending_events_survive_a_restart(notifiers, webhooks, tmp_path):
    port = free_port()
    # Given a process queued events for a sink that is down, and stopped
    first = notifiers(webhook_config(f"http://127.0.0.1:{port}/hook"))
    first.publish(drift_event(1))
    first.publish(drift_event(2))
    assert first.deliver_pending() == 0
    first.stop()
    # when a new process opens the same outbox once the sink is back,
    receiver = webhooks(port=port)
    second = notifiers(webhook_config(receiver.url))
    assert [e.event["id"] for e in second.outbox.entries(state="pending")] == [1, 2]
    # it delivers them (after the backoff the first process recorded), in order.
    assert second.deliver_pending(time.time() + 1.0) == 2
    assert [b["text"][-22:] for b in receiver.delivered()] == [
        "pkg1 upgraded 1.0.0 -> 2.0.0"[-22:],
        "pkg2 upgraded 1.0.0 -> 2.0.0"[-22:],
    ]


def test_drift_detection_goes_on_while_the_sink_is_down(
    research_env, notifiers, webhooks, tmp_path
):
    repo = Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    python, root = str(research_env["python"]), research_env["workspace"]
    baseline = load_snapshot(repo, create_snapshot(repo, capture_environment([python], root)).id)
    events = EventLog(tmp_path / "events.sqlite")
    port = free_port()
    notifier = notifiers(webhook_config(f"http://127.0.0.1:{port}/hook"))
    notifier.start()
    seen: queue.Queue[dict[str, Any]] = queue.Queue()

    def on_event(event: dict[str, Any]) -> None:
        notifier.publish(event)
        seen.put(event)

    watcher = DriftWatcher([python], root, baseline, events, on_event, environment_id="alice")
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        assert watcher.ready.wait(30), "the watcher did not start watching"
        # Given the webhook is down, the watcher still sees a data file vanish and come back
        data = root / "data" / "measurements.csv"
        content = data.read_bytes()
        data.unlink()
        removed = seen.get(timeout=60)
        data.write_bytes(content)
        restored = seen.get(timeout=60)
        assert removed["status"] == "CRITICAL_DRIFT"
        assert any(c["severity"] == "critical" for c in restored["resolved"])
        # and when the webhook comes up, both events arrive, in the order they happened.
        receiver = webhooks(port=port)
        wait_until(lambda: len(receiver.delivered()) == 2, timeout=30)
        assert [b["text"] for b in receiver.delivered()] == [
            make_webhook_payload(removed)["text"],
            make_webhook_payload(restored)["text"],
        ]
    finally:
        watcher.stop_event.set()
        thread.join(10)
        events.close()
        repo.close()
