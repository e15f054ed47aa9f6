"""The hub service's web application (a JupyterHub managed service)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubAuth, HubOAuth
from tornado import web
from tornado.ioloop import IOLoop
from traitlets import Dict, Instance, Integer, List, Unicode, default
from traitlets.config import Application

from westtek_core.labs import HUB_ADMINS_GROUP, LabPolicy
from westtek_core.paths import data_dir as westtek_data_dir
from westtek_core.snapshot.retention import RetentionPolicy
from westtek_core.status import Capability, status_report
from westtek_core.version import __version__
from westtek_hub.api_base import HubClient
from westtek_hub.archived_launches import WaitingLaunches, waiting_launches_of
from westtek_hub.audit_anchor import AnchorError
from westtek_hub.audit_trail import AuditKeyError, AuditTrail
from westtek_hub.auto_snapshot_settings import auto_snapshot_routes
from westtek_hub.db import make_engine, session_factory, upgrade
from westtek_hub.handlers import api_routes, metrics_routes
from westtek_hub.knowledge import LabKnowledge
from westtek_hub.metrics import WestTekMetrics
from westtek_hub.panel import WestTekPanel, panel_routes
from westtek_hub.registry import Quota, Registry
from westtek_hub.stores import LabStores


class StatusHandler(web.RequestHandler):
    """``GET /services/westtek/api/status``: the service's version and capabilities."""

    def get(self) -> None:
        """Answer the status report."""
        self.set_header("Content-Type", "application/json")
        self.finish(status_report("hub-service", extra=(Capability.HUB_SERVICE,)).to_json())


async def close_hub_http_client() -> None:
    """Close JupyterHub's HTTP client session of this event loop (HubAuth's hub requests)."""
    try:
        from jupyterhub.httpclient import JupyterHubHTTPClient
    except ImportError:  # JupyterHub 5 checks tokens with Tornado's client: nothing to close
        return
    await JupyterHubHTTPClient.loop_instance().close()


class ServiceConfigError(Exception):
    """A setting the service cannot start without."""


def configured_hub_api_url(config: Any) -> str:
    """The hub API URL the configuration or JupyterHub's environment names ('' if none).

    HubAuth would otherwise fall back to http://127.0.0.1:8081/hub/api, which on any real
    deployment is not the hub: every token check and server start would fail at run time.
    """
    for section in ("HubOAuth", "HubAuth"):
        if config[section].get("api_url"):
            return str(config[section].api_url)
    return os.environ.get("JUPYTERHUB_API_URL", "")


class WestTekHubService(Application):
    """Serve the West Tek hub API; JupyterHub starts it as the managed service ``westtek``."""

    name = "westtek-hub"
    version = __version__
    description = "West Tek hub service: registry, admin panel, sharing, succession, audit."
    classes = [HubAuth, HubOAuth, WestTekPanel, WestTekMetrics, LabStores, AuditTrail]

    @default("log_level")
    def _default_log_level(self) -> int:
        # as JupyterHub's own: IT sees the service start, stop and what it does to stores
        return logging.INFO

    @default("log_format")
    def _default_log_format(self) -> str:
        # JupyterHub's, so the service's lines read like the hub's they are mixed with
        return (
            "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s %(module)s:%(lineno)d] %(message)s"
        )

    @default("log_datefmt")
    def _default_log_datefmt(self) -> str:
        return "%Y-%m-%d %H:%M:%S"

    service_prefix = Unicode(
        config=True,
        help="URL prefix the hub's proxy routes to this service (JUPYTERHUB_SERVICE_PREFIX).",
    )

    @default("service_prefix")
    def _default_service_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/westtek/")

    ip = Unicode(config=True, help="Address to listen on (from JUPYTERHUB_SERVICE_URL).")

    @default("ip")
    def _default_ip(self) -> str:
        return urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "")).hostname or "127.0.0.1"

    port = Integer(config=True, help="Port to listen on (from JUPYTERHUB_SERVICE_URL).")

    @default("port")
    def _default_port(self) -> int:
        return urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "")).port or 10101

    data_dir = Unicode(
        config=True,
        help="Directory of the service's own data (the default SQLite registry); default: "
        "'hub' in West Tek's data directory.",
    )

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return str(westtek_data_dir() / "hub")

    db_url = Unicode(
        config=True,
        help="SQLAlchemy URL of the registry: SQLite by default, "
        "postgresql+psycopg://user:password@host/db in production.",
    )

    @default("db_url")
    def _default_db_url(self) -> str:
        return os.environ.get("WESTTEK_HUB_DB_URL") or (
            f"sqlite:///{Path(self.data_dir) / 'registry.sqlite'}"
        )

    lab_group_prefix = Unicode(
        "lab-",
        config=True,
        help="JupyterHub groups named with this prefix are labs (lab-<id>); "
        "'<group>-admins' makes its members the lab's admins.",
    )

    lab_groups = List(
        Unicode(),
        config=True,
        help="Other JupyterHub group names that are labs (the demo's vault-13, vault-101).",
    )

    hub_admins_group = Unicode(
        HUB_ADMINS_GROUP,
        config=True,
        help="The JupyterHub group whose members are the hub's admins (every lab). Give "
        "the group the role of westtek_hub.roles.suite_roles, not JupyterHub's admin flag: "
        "JupyterHub's admin role also reaches every user's notebook server.",
    )

    quotas = Dict(
        config=True,
        help="Per-lab quotas, {lab: {'servers': N, 'snapshot_bytes': N, "
        "'requests_per_minute': N}}; 0 is unlimited, a missing lab takes default_quota.",
    )

    default_quota = Dict(
        {"servers": 0, "snapshot_bytes": 0, "requests_per_minute": 1200},
        config=True,
        help="The quota of labs not named in quotas (0 is unlimited).",
    )

    retention = Dict(
        {"keep_last": 10, "keep_daily": 7, "keep_weekly": 8, "keep_monthly": 12},
        config=True,
        help="The retention policy the panel's storage view applies per environment "
        "(what a prune would free): keep_last, keep_daily, keep_weekly, keep_monthly.",
    )

    public_url = Unicode(
        config=True,
        help="The hub's public URL, through which the service reaches users' servers "
        "(default: $JUPYTERHUB_PUBLIC_URL, else http://127.0.0.1:8000).",
    )

    @default("public_url")
    def _default_public_url(self) -> str:
        return os.environ.get("JUPYTERHUB_PUBLIC_URL") or "http://127.0.0.1:8000"

    hub_auth = Instance(
        HubAuth,
        config=True,
        help="Checks JupyterHub API tokens with the hub (configure it as c.HubAuth.*; its "
        "defaults come from the service's JUPYTERHUB_* environment). HubOAuth, so browsers "
        "log in to the panel, when the hub gave the service an OAuth client.",
    )

    @default("hub_auth")
    def _default_hub_auth(self) -> HubAuth:
        oauth = os.environ.get("JUPYTERHUB_CLIENT_ID") or self.config.get("HubOAuth", {}).get(
            "oauth_client_id"
        )
        return HubOAuth(parent=self) if oauth else HubAuth(parent=self)

    def make_app(self) -> web.Application:
        """Build the Tornado application with the route table under the service prefix."""
        if not configured_hub_api_url(self.config):
            raise ServiceConfigError(
                "no hub API URL: JupyterHub sets JUPYTERHUB_API_URL for its managed services; "
                "run the service standalone with --HubAuth.api_url=http://<hub>/hub/api"
            )
        try:
            chain = AuditTrail(parent=self, data_dir=self.data_dir).chain(create_key=True)
        except (AuditKeyError, AnchorError) as e:
            raise ServiceConfigError(str(e)) from None
        prefix = self.service_prefix.rstrip("/")
        routes: list[Any] = [
            (rf"{prefix}/api/status", StatusHandler),
            *api_routes(prefix),
            *panel_routes(prefix),
            *auto_snapshot_routes(prefix),
            *metrics_routes(prefix),
        ]
        if self.db_url.startswith("sqlite:///"):
            Path(self.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(self.db_url)
        upgrade(engine)
        policy = LabPolicy(
            prefix=self.lab_group_prefix,
            named=frozenset(self.lab_groups),
            hub_admins_group=self.hub_admins_group,
        )
        sessions = chain.bind(session_factory(engine))
        stores = LabStores(parent=self)
        books = Registry(
            sessions,
            policy,
            quotas={lab: Quota.from_config(q) for lab, q in self.quotas.items()},
            default_quota=Quota.from_config(self.default_quota),
            retention=RetentionPolicy(**{k: int(v) for k, v in self.retention.items()}),
        )
        hub = HubClient(self.hub_auth)
        return web.Application(
            routes,
            hub_auth=self.hub_auth,
            westtek_engine=engine,
            westtek_registry=books,
            westtek_hub_client=hub,
            westtek_waiting_launches=WaitingLaunches(hub, books, stores),
            westtek_lab_stores=stores,
            westtek_knowledge=LabKnowledge(Path(self.data_dir) / "kb", stores, parent=self),
            westtek_public_url=self.public_url,
            westtek_metrics=WestTekMetrics(sessions, parent=self),
            **WestTekPanel(parent=self).app_settings(prefix, self.data_dir),
        )

    def start(self) -> None:
        """Listen and serve until JupyterHub stops the service (SIGTERM or SIGINT)."""
        try:
            asyncio.run(self._serve())
        except ServiceConfigError as e:
            sys.exit(f"{self.name}: error: {e}")

    async def _serve(self) -> None:
        app = self.make_app()
        server = app.listen(self.port, self.ip)
        start_background_work(app)
        self.log.info(
            "West Tek hub service at http://%s:%d%s", self.ip, self.port, self.service_prefix
        )
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        await stopped.wait()
        self.log.info("West Tek hub service stopping (a lab memory's snapshot in progress ends)")
        server.stop()
        waiting_launches_of(app).stop()
        app.settings["westtek_knowledge"].close()
        app.settings["westtek_engine"].dispose()
        await close_hub_http_client()
        self.log.info("West Tek hub service stopped")


def start_background_work(app: web.Application) -> None:
    """What the service does beside answering: waiting launches, the labs' memories (logged)."""
    waiting_launches_of(app).start()
    knowledge: LabKnowledge = app.settings["westtek_knowledge"]
    if not knowledge.active:
        return
    sessions = app.settings["westtek_registry"].sessions
    work = IOLoop.current().run_in_executor(None, knowledge.catch_up, sessions)

    def done(finished: Any) -> None:
        if finished.exception() is not None:
            knowledge.log.error("the labs' memories did not catch up: %s", finished.exception())
        elif finished.result():
            knowledge.log.info("the labs' memories caught up %d snapshot(s)", finished.result())

    work.add_done_callback(done)


main = WestTekHubService.launch_instance
