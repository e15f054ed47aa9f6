"""The ExtensionApp that registers West Tek's handlers on a Jupyter server."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Integer, List, Unicode, default

from westtek_core.agents.service import AgentService
from westtek_core.autosnapshot import AutoSnapshotter
from westtek_core.autosnapshot_settings import DEFAULTS, from_environment, retention_policy
from westtek_core.capture import SecretScanner
from westtek_core.drift.events import EventLog
from westtek_core.environment_service import EnvironmentService
from westtek_core.hub_reports import forward_reports
from westtek_core.labs import server_lab_id
from westtek_core.notify import Notifier, notifier_from_config
from westtek_core.paths import default_key_file, default_store, event_log_path
from westtek_core.snapshot import default_environment_id
from westtek_core.snapshot.archive import ARCHIVE_POLL_SECONDS
from westtek_core.store.crypto import SNAPSHOT_KMS_KEY_ENV
from westtek_server_ext.handlers import handler_routes, page_routes
from westtek_server_ext.kernels import KernelWatch


class WestTekExtension(ExtensionApp):
    """Serve West Tek's REST API at ``{base_url}westtek/api/`` and watch for drift."""

    name = "westtek_server_ext"
    description = "West Tek Environment Preservation"

    store = Unicode(
        config=True,
        help="Snapshot store: a directory or s3://bucket/prefix. "
        "Default: $WESTTEK_STORE, else a per-user data directory.",
    )

    @default("store")
    def _default_store(self) -> str:
        return default_store()

    key_file = Unicode(
        config=True,
        help="Encryption key of an encrypted store (default: $WESTTEK_KEY_FILE or "
        "~/.config/westtek/store.key).",
    )

    @default("key_file")
    def _default_key_file(self) -> str:
        return str(default_key_file())

    workspace = Unicode(
        config=True,
        help="The workspace captured with each snapshot (notebooks and data). "
        "Default: the server's root_dir.",
    )

    @default("workspace")
    def _default_workspace(self) -> str:
        return str(Path(self.serverapp.root_dir).expanduser()) if self.serverapp else os.getcwd()

    pythons = List(
        Unicode(),
        config=True,
        help="Interpreters whose environments are captured and watched. "
        "Empty (the default): every kernelspec's interpreter and the server's own.",
    )

    environment_id = Unicode(
        config=True,
        help="The environment this server's snapshots and drift belong to (default: "
        "$WESTTEK_ENVIRONMENT_ID, else under JupyterHub the user's name, plus ':<server name>' "
        "for a named server, the only ids the hub service registers for the user; else "
        "user@host).",
    )

    @default("environment_id")
    def _default_environment_id(self) -> str:
        return default_environment_id()

    watch = Bool(
        True,
        config=True,
        help="Watch the environment and report drift events as they happen.",
    )

    lab_id = Unicode(
        config=True,
        help="The lab this environment belongs to: its knowledge base is the lab's. "
        "Default: $WESTTEK_LAB_ID (set by the spawner), else a personal one.",
    )

    @default("lab_id")
    def _default_lab_id(self) -> str:
        return server_lab_id()

    kms_key_id = Unicode(
        config=True,
        help="AWS KMS key (id or ARN) a new store is encrypted with: a data key under the "
        "lab's encryption context (lab_id), kept wrapped in the store's config. Default: "
        "$WESTTEK_SNAPSHOT_KMS_KEY_ARN (set on AWS); empty: new stores are not encrypted "
        "(unless the CLI made them so). Existing stores keep their own encryption.",
    )

    @default("kms_key_id")
    def _default_kms_key_id(self) -> str:
        return os.environ.get(SNAPSHOT_KMS_KEY_ENV, "")

    kb_index = Unicode(
        config=True,
        help="The knowledge-base index file, re-ingested after each snapshot "
        "(default: the lab's, in the per-user data directory).",
    )

    @default("kb_index")
    def _default_kb_index(self) -> str:
        from westtek_core.kb import default_index_path

        return str(default_index_path(self.lab_id or None))

    debounce_ms = Integer(
        300,
        config=True,
        help="How long the watcher waits for file changes to settle before grading (ms).",
    )

    store_poll_seconds = Float(
        5.0,
        config=True,
        help="How often the store is listed for snapshots taken outside this server (the "
        "westtek CLI in a terminal, another server of the environment), which are then "
        "announced to the sidebar and the hub service. Each poll is one listing of the "
        "store's snapshots (a LIST request on S3).",
    )

    archive_poll_seconds = Float(
        ARCHIVE_POLL_SECONDS,
        config=True,
        help="How often a restore, verify or take-over whose packs are in archive storage (S3"
        " Glacier Deep Archive, after a year) checks whether they are back, and so the restore"
        " and take-over a container start left for when they are; meanwhile the job shows"
        " 'waiting for archive, ready in about N hours' and other jobs run.",
    )

    auto_snapshots = Bool(
        config=True,
        help="Snapshot the environment automatically: after a change settles, on a "
        "schedule, and before the server stops (the spawner's stop, the idle culler's, a "
        "SIGTERM). Each is labelled westtek.auto=<why>; an unchanged environment writes "
        "nothing; automatic snapshots beyond auto_snapshot_retention are pruned. Default: "
        "$WESTTEK_AUTO_SNAPSHOTS (the spawner sets it from the lab's settings in the hub "
        f"panel), else {'on' if DEFAULTS.enabled else 'off'}.",
    )
    auto_snapshot_settle_seconds = Float(
        config=True,
        help="How long the environment must stay unchanged after a change (a pip install, "
        "a kernel, a config) before its automatic snapshot. Default: "
        "$WESTTEK_AUTO_SNAPSHOT_SETTLE_SECONDS (the lab's setting), else "
        f"{DEFAULTS.settle_seconds:g}.",
    )
    auto_snapshot_interval_hours = Float(
        config=True,
        help="Hours between scheduled automatic snapshots (notebooks and data too); 0: none. "
        "Default: $WESTTEK_AUTO_SNAPSHOT_INTERVAL_HOURS (the lab's setting), else "
        f"{DEFAULTS.interval_hours:g}.",
    )
    auto_snapshot_retention = Dict(
        config=True,
        help="Which automatic snapshots of the environment are kept (keep_last, keep_daily, "
        "keep_weekly, keep_monthly, as `westtek snapshot prune`); the others are deleted "
        "after each automatic snapshot. Snapshots a researcher took are never pruned. "
        "Default: $WESTTEK_AUTO_SNAPSHOT_RETENTION (the lab's setting, JSON), else "
        f"{json.dumps(DEFAULTS.to_json()['retention'])}.",
    )

    # the lab's settings reach the server as variables (see westtek_core.autosnapshot_settings)
    @default("auto_snapshots")
    def _default_auto_snapshots(self) -> bool:
        return bool(from_environment("enabled"))

    @default("auto_snapshot_settle_seconds")
    def _default_auto_snapshot_settle_seconds(self) -> float:
        return float(from_environment("settle_seconds"))

    @default("auto_snapshot_interval_hours")
    def _default_auto_snapshot_interval_hours(self) -> float:
        return float(from_environment("interval_hours"))

    @default("auto_snapshot_retention")
    def _default_auto_snapshot_retention(self) -> dict[str, int]:
        return dict(from_environment("retention"))

    stop_snapshot_seconds = Float(
        25.0,
        config=True,
        help="How long the server waits for its before-stop snapshot when it stops; keep it "
        "below the spawner's grace period (SIGTERM to SIGKILL: 30 s on ECS by default).",
    )

    def initialize_settings(self) -> None:
        """Create the one service object the handlers share, and start watching."""
        from westtek_core.kb import KnowledgeIndexBackend

        # c.KnowledgeIndexBackend chooses the index (default: the SQLite file kb_index)
        kb_backend = KnowledgeIndexBackend(parent=self, lab_id=self.lab_id)
        self.service = EnvironmentService(
            store=self.store,
            key_file=Path(self.key_file),
            root=Path(self.workspace),
            pythons=list(self.pythons) or None,
            environment_id=self.environment_id,
            event_log=EventLog(event_log_path()),
            debounce_ms=self.debounce_ms,
            store_poll_seconds=self.store_poll_seconds,
            archive_poll_seconds=self.archive_poll_seconds,
            kb_index=Path(self.kb_index),
            kb_backend=kb_backend,
            # c.SecretScanner: the credential locations left out, the content scan's limit
            secret_scanner=SecretScanner(parent=self),
            kms_key_id=self.kms_key_id,
            lab_id=self.lab_id,
        )
        self.settings["westtek_service"] = self.service
        # drift events go to the hub service and the configured sinks (c.Notifier.sinks);
        # snapshot reports and assessments to the hub service. Subscribed before the
        # agents, so that an event is queued before the Drift Analyzer's assessment of it.
        self.notifier: Notifier = notifier_from_config(self.config)
        forward_reports(self.service, self.notifier.publish, self.lab_id)
        self.notifier.start()
        # the agents: chat, knowledge search, and the Drift Analyzer on critical events
        self.agents = AgentService(self.service, parent=self, index_path=self.kb_index)
        self.settings["westtek_agents"] = self.agents
        self.agents.start()
        if self.watch:
            self.service.start_watching()
        # the restore and take-over this container's start left for when their packs are
        # back from archive storage
        for pending in (self.service.resume_container_start(), self.service.resume_take_over()):
            if pending is not None:
                self.log.info("West Tek: %s", pending.description)
        self.auto_snapshotter: AutoSnapshotter | None = None
        if self.auto_snapshots:
            self.auto_snapshotter = AutoSnapshotter(
                self.service,
                settle_seconds=self.auto_snapshot_settle_seconds,
                interval_seconds=self.auto_snapshot_interval_hours * 3600,
                retention=retention_policy(self.auto_snapshot_retention),
            )
            self.auto_snapshotter.start()
        # the lab's settings take effect at a start: the log says which this server runs
        self.log.info("West Tek: automatic snapshots %s", self._auto_snapshot_summary())
        # kernels that still run what an install replaced on disk
        server = self.serverapp
        assert server is not None  # settings are only initialized for a server
        self.kernel_watch = KernelWatch(self.service, server.kernel_manager, server.session_manager)
        self.kernel_watch.start(server.event_logger)

    def _auto_snapshot_summary(self) -> str:
        if not self.auto_snapshots:
            return "off"
        retention = json.dumps(self.auto_snapshot_retention, sort_keys=True)
        return (
            f"on (settle {self.auto_snapshot_settle_seconds:g} s, every "
            f"{self.auto_snapshot_interval_hours:g} h, keep {retention})"
        )

    def initialize_handlers(self) -> None:
        """Register the route table; ExtensionApp prefixes each pattern with base_url."""
        self.handlers.extend(handler_routes() + page_routes())

    async def stop_extension(self) -> None:
        """Stop the watcher and the job runner with the server."""
        service: EnvironmentService | None = getattr(self, "service", None)
        if service is not None:
            snapshotter: AutoSnapshotter | None = getattr(self, "auto_snapshotter", None)
            if snapshotter is not None:
                # what was installed since the last snapshot survives the container
                outcome = await asyncio.to_thread(
                    snapshotter.stop, True, self.stop_snapshot_seconds
                )
                self.log.info("West Tek: before-stop snapshot: %s", outcome)
            self.kernel_watch.stop()
            self.agents.stop()
            service.stop()
            service.event_log.close()
            self.notifier.stop()
