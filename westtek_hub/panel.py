"""The admin panel: pages in JupyterHub's look under ``/services/westtek/``.

The pages extend JupyterHub's own ``page.html`` (its templates ship in the jupyterhub
package), with JupyterHub's CSS, Bootstrap and scripts served from this service's
``static/`` (the same files the hub serves), so the panel has the hub's nav bar: Home,
Token, Admin, the Services menu this service appears in (``display: True``) and Logout.

A browser logs in through the hub's OAuth (HubOAuth and ``oauth_callback``); a request with
``Authorization: token …`` is accepted too. Every page shows what the JSON API would show
the same user (the registry's rules, called with their ``Caller``), Jinja2 escapes every
value, and the pages' buttons call the JSON API with ``fetch()``, the OAuth cookie and
JupyterHub's XSRF token (``X-XSRFToken``).

What the pages show is in ``panel_views`` and ``panel_timeline``; what they ask the hub
(running servers, the Services menu) in ``panel_hub``.
"""

from __future__ import annotations

import binascii
import json
import os
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.services.auth import HubAuth, HubOAuthCallbackHandler, UserNotAllowed
from jupyterhub.utils import url_path_join
from sqlalchemy.orm import Session
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import List, Unicode
from traitlets.config import LoggingConfigurable

from westtek_core.version import __version__
from westtek_core.wire import DRIFT_STATUSES
from westtek_hub import registry
from westtek_hub.api_base import APIHandler, audited_hub_request
from westtek_hub.archived_launches import visible_launches
from westtek_hub.models import Environment
from westtek_hub.panel_hub import ServicesMenu, servers_of
from westtek_hub.panel_timeline import (
    TIMELINE_DAYS,
    drift_timeline,
    timeline_chart,
    timeline_events,
)
from westtek_hub.panel_views import (
    AuditFilters,
    audit_view,
    can_reassign,
    environment_actions,
    from_epoch,
    group_by_lab,
    http_url,
    known_labs,
    known_researchers,
    predecessor_of,
    researcher_of,
    restorable_shares,
    server_name_of,
    server_state,
    shareable_snapshots,
    visible_environments,
    visible_shares,
)
from westtek_hub.registry import Caller

TEMPLATES = Path(__file__).parent / "templates"
ASSETS = Path(__file__).parent / "static"
JUPYTERHUB_TEMPLATES = Path(DATA_FILES_PATH) / "templates"
JUPYTERHUB_STATIC = Path(DATA_FILES_PATH) / "static"
# Bootstrap's contextual colour of each drift status
DRIFT_CLASSES = {"STABLE": "success", "MINOR_DRIFT": "warning", "CRITICAL_DRIFT": "danger"}


def load_cookie_secret(path: Path) -> bytes:
    """The secret that signs the OAuth and XSRF cookies, created once (hex, mode 0600)."""
    try:
        return binascii.a2b_hex(path.read_text().strip())
    except (OSError, binascii.Error, ValueError):
        pass
    secret = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(binascii.b2a_hex(secret).decode() + "\n")
    os.replace(partial, path)
    return secret


class WestTekPanel(LoggingConfigurable):
    """The panel's templates and cookie secret (the service's browser-facing settings)."""

    template_paths = List(
        Unicode(),
        config=True,
        help="Directories searched for templates before the panel's own and JupyterHub's: "
        "give it the hub's c.JupyterHub.template_paths so a customised page.html applies here.",
    )

    cookie_secret_file = Unicode(
        config=True,
        help="File of the hex secret that signs the panel's OAuth and XSRF cookies; created "
        "on first start (default: 'cookie_secret' in the service's data directory).",
    )

    def templates(self) -> jinja2.Environment:
        """Jinja2 with autoescaping: configured paths, the panel's, then JupyterHub's."""
        loader = jinja2.FileSystemLoader(
            [*self.template_paths, str(TEMPLATES), str(JUPYTERHUB_TEMPLATES)]
        )
        return jinja2.Environment(loader=loader, autoescape=True)

    def app_settings(self, prefix: str, data_dir: str) -> dict[str, Any]:
        """Tornado settings: cookie secret, JupyterHub's static files, the templates."""
        secret_file = Path(self.cookie_secret_file or Path(data_dir) / "cookie_secret")
        return {
            "cookie_secret": load_cookie_secret(secret_file),
            "static_path": str(JUPYTERHUB_STATIC),
            "static_url_prefix": f"{prefix}/static/",
            "westtek_templates": self.templates(),
            "westtek_prefix": f"{prefix}/",
            "westtek_services_menu": ServicesMenu(),
        }


@dataclass(frozen=True)
class PageUser:
    """What JupyterHub's ``page.html`` reads of ``user``."""

    name: str

    @property
    def json_escaped_name(self) -> str:
        """The name as the inside of a JSON string, safe inside ``<script>`` too."""
        escaped = json.dumps(self.name)[1:-1]
        return escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class PanelHandler(APIHandler):
    """A panel page: the user from the hub (token or OAuth cookie), HTML in JupyterHub's look."""

    @property
    def prefix(self) -> str:
        """The service prefix, with its trailing slash."""
        found: str = self.settings["westtek_prefix"]
        return found

    async def page_caller(self) -> Caller | None:
        """The logged-in caller, or None (nobody identified)."""
        model = await self.hub_auth.get_user(self, sync=False)
        if not model:
            return None
        try:
            model = self.check_hub_user(model)
        except UserNotAllowed:
            raise web.HTTPError(403, f"{model.get('name')} may not use this service") from None
        if model.get("kind", "user") != "user":
            raise web.HTTPError(403, "the panel is for hub users, not services")
        self.current_user = model
        full = await self.hub.user(str(model["name"])) or model
        return Caller.from_model(full, self.registry.policy)

    async def require_caller(self) -> Caller:
        """The caller; otherwise a redirect to the hub's login (HubOAuth) or a 403."""
        caller = await self.page_caller()
        if caller is not None:
            return caller
        if self.hub_auth.login_url:
            self.redirect(self.get_login_url())
            raise web.Finish()
        raise web.HTTPError(403, "log in to JupyterHub and open West Tek from its Services menu")

    def hub_prefix(self) -> str:
        """The hub's URL prefix (``/hub/``), where its pages and logo are."""
        return str(self.hub_auth.hub_prefix)

    def asset_url(self, path: str) -> str:
        """The URL of one of the panel's own static files, versioned by content."""
        version = web.StaticFileHandler.get_version({"static_path": str(ASSETS)}, path)
        return f"{self.prefix}panel-static/{path}" + (f"?v={version}" if version else "")

    async def render_page(self, template: str, caller: Caller | None, **context: Any) -> None:
        """Render a template extending JupyterHub's ``page.html`` and finish."""
        hub_prefix = self.hub_prefix()
        services: list[dict[str, str]] = []
        if caller is not None:
            menu: ServicesMenu = self.settings["westtek_services_menu"]
            services = await menu.get(self.hub, {"name": "westtek", "href": self.prefix})
        page = {
            "static_url": self.static_url,
            "asset_url": self.asset_url,
            "base_url": hub_prefix,
            "prefix": hub_prefix.removesuffix("hub/") or "/",
            "user": PageUser(caller.name) if caller else None,
            "caller": caller,
            "admin_access": bool(caller and caller.admin),
            "parsed_scopes": {"admin-ui"} if caller and caller.admin else set(),
            "no_spawner_check": True,
            "services": services,
            "xsrf_token": self.xsrf_token.decode(),
            "version_hash": "",
            "logout_url": url_path_join(hub_prefix, "logout"),
            "login_url": self.hub_auth.login_url or url_path_join(hub_prefix, "login"),
            "service_prefix": self.prefix,
            "api_url": f"{self.prefix}api/",
            "version": __version__,
            "drift_classes": DRIFT_CLASSES,
            "drift_statuses": DRIFT_STATUSES,
            "http_url": http_url,
            "from_epoch": from_epoch,
        }
        templates: jinja2.Environment = self.settings["westtek_templates"]
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(templates.get_template(template).render(**(page | context)))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors as JupyterHub's error page."""
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        templates: jinja2.Environment = self.settings["westtek_templates"]
        hub_prefix = self.hub_prefix()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            templates.get_template("error.html").render(
                static_url=self.static_url,
                base_url=hub_prefix,
                prefix=hub_prefix.removesuffix("hub/") or "/",
                status_code=status_code,
                status_message=self._reason,
                message=message,
                no_spawner_check=True,
                xsrf_token="",
            )
        )


class EnvironmentsPage(PanelHandler):
    """``/services/westtek/``: every visible environment by lab, with filters and actions."""

    async def get(self) -> None:
        """The environments page (a short page naming the service when no one can log in)."""
        caller = await self.page_caller()
        if caller is None and not self.hub_auth.login_url:
            await self.render_page("westtek/about.html", None)
            return
        caller = caller or await self.require_caller()
        lab = self.get_argument("lab", "")
        drift = self.get_argument("drift", "")
        researcher = self.get_argument("researcher", "")
        if drift and drift not in DRIFT_STATUSES:
            raise web.HTTPError(400, f"drift must be one of {', '.join(DRIFT_STATUSES)}")

        def work(session: Session) -> dict[str, Any]:
            everything = visible_environments(session, caller)
            return {
                "rows": [
                    r
                    for r in everything
                    if (not lab or r["lab_id"] == lab)
                    and (not drift or r["drift_status"] == drift)
                    and (not researcher or researcher_of(r) == researcher)
                ],
                "labs": sorted({str(r["lab_id"]) for r in everything}),
                "researchers": sorted({researcher_of(r) for r in everything}),
                "shared": restorable_shares(session, caller),
                "share_labs": known_labs(session),
                "counts": Counter(str(r["drift_status"]) for r in everything),
                "storage": registry.lab_storage(
                    session, caller, self.registry.retention, self.registry.quota
                ),
                "waiting_launches": visible_launches(session, caller),
            }

        view = self.run(caller, "panel.environments", lab, work)
        servers = await servers_of(self.hub, (researcher_of(r) for r in view["rows"]))
        for row in view["rows"]:
            user = researcher_of(row)
            row["server_name"] = server_name_of(row["container_info"], user)
            row["server_state"] = server_state(servers.get(user, {}).get(row["server_name"]))
            row["actions"] = environment_actions(row, view["shared"].get(str(row["id"]), []))
            row["can_reassign"] = can_reassign(caller, row)
        await self.render_page(
            "westtek/environments.html",
            caller,
            groups=group_by_lab(view["rows"]),
            labs=view["labs"],
            researchers=view["researchers"],
            share_labs=view["share_labs"],
            counts=view["counts"],
            storage=view["storage"],
            waiting_launches=view["waiting_launches"],
            retention=self.registry.retention,
            total=sum(view["counts"].values()),
            filters={"lab": lab, "drift": drift, "researcher": researcher},
            active="environments",
        )


class DriftPage(PanelHandler):
    """``/services/westtek/drift``: per lab, drift events per day by status over 30 days."""

    async def get(self) -> None:
        """The drift timelines."""
        caller = await self.require_caller()
        now = datetime.now(timezone.utc)
        since = datetime.combine(
            now.date() - timedelta(days=TIMELINE_DAYS - 1), datetime.min.time(), timezone.utc
        )

        def work(session: Session) -> dict[str, list[Counter[str]]]:
            return drift_timeline(timeline_events(session, caller, since), now.date())

        timeline = self.run(caller, "panel.drift", "", work)
        charts = [(lab, timeline_chart(days, now.date())) for lab, days in sorted(timeline.items())]
        await self.render_page(
            "westtek/drift.html",
            caller,
            charts=charts,
            days=TIMELINE_DAYS,
            first_day=since.date().isoformat(),
            last_day=now.date().isoformat(),
            active="drift",
        )


class SharingPage(PanelHandler):
    """``/services/westtek/sharing``: active shares (revoke) and a form to share a snapshot."""

    async def get(self) -> None:
        """The sharing page."""
        caller = await self.require_caller()

        def work(session: Session) -> dict[str, Any]:
            return {
                "shares": visible_shares(session, caller),
                "snapshots": shareable_snapshots(session, caller),
                "share_labs": known_labs(session),
            }

        await self.render_page(
            "westtek/sharing.html",
            caller,
            **self.run(caller, "panel.sharing", "", work),
            active="sharing",
        )


class SuccessionPage(PanelHandler):
    """``/services/westtek/succession``: choose an environment, read its package, hand it on."""

    async def get(self) -> None:
        """The succession wizard: step 1 without ``?environment_id=``, steps 2 and 3 with it."""
        caller = await self.require_caller()
        env_id = self.get_argument("environment_id", "")

        def choices(session: Session) -> dict[str, Any]:
            # a share gives snapshots, not the history a succession package holds
            rows = visible_environments(session, caller)
            return {
                "environments": [r for r in rows if not r["access"].startswith("shared-")],
                "researchers": known_researchers(session),
            }

        view = self.run(caller, "panel.succession", env_id, choices)
        package = None
        if env_id:
            package = self.knowledge.take_over(
                self.run(
                    caller,
                    "transfer.package",
                    env_id,
                    lambda s: registry.transfer_package(s, caller, env_id),
                )
            )
        await self.render_page(
            "westtek/succession.html",
            caller,
            environments=view["environments"],
            researchers=view["researchers"],
            environment_id=env_id,
            package=package,
            may_reassign=bool(package and can_reassign(caller, package["environment"])),
            predecessor=package and predecessor_of(caller, package),
            active="succession",
        )


class AuditPage(PanelHandler):
    """``/services/westtek/audit`` (hub admins): the log, its verification and export links."""

    async def get(self) -> None:
        """The audit view (403 and an audit entry for anyone else)."""
        caller = await self.require_caller()
        filters = AuditFilters(
            actor=self.get_argument("actor", ""),
            action=self.get_argument("action", ""),
            outcome=self.get_argument("outcome", ""),
            lab=self.get_argument("lab", ""),
        )
        view = self.run(caller, "audit.read", "", lambda s: audit_view(s, caller, filters))
        await self.render_page(
            "westtek/audit.html", caller, **view, filters=filters, active="audit"
        )


class ServerStopHandler(APIHandler):
    """``DELETE api/environments/{id}/server``: stop the hub server an environment runs in."""

    async def delete(self, env_id: str) -> None:
        """Ask the hub to stop it (the researcher's server the container report names)."""
        caller = await self.caller()

        def work(session: Session) -> tuple[Environment, str]:
            env, _ = registry.get_environment(session, caller, env_id, act=True)
            return env, server_name_of(env.container_info or {}, env.researcher_id)

        env, server = self.run(caller, "server.stop", env_id, work)
        user = env.researcher_id
        path = (
            f"users/{quote(user)}/servers/{quote(server)}"
            if server
            else f"users/{quote(user)}/server"
        )
        detail = {"user": user, "server_name": server}
        try:
            await audited_hub_request(self.hub, self.registry, caller, "server.stop", env.id,
                                      env.lab_id, detail, "DELETE", path)  # fmt: skip
        except OSError as e:
            raise web.HTTPError(502, f"the hub did not answer: {e}") from None
        except HTTPClientError as e:
            if e.code in (400, 404):
                raise web.HTTPError(409, f"{user}'s server is not running") from None
            raise web.HTTPError(502, f"the hub refused to stop the server ({e.code})") from None
        self.reply({"user": user, "server_name": server, "environment_id": env_id}, 202)


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """``/services/westtek/oauth_callback``: finishes the hub's OAuth login (the panel's cookie)."""

    @property
    def hub_auth(self) -> HubAuth:
        """The service's HubOAuth."""
        found: HubAuth = self.settings["hub_auth"]
        return found

    def on_finish(self) -> None:
        """Time the request in the service's metrics."""
        metrics = self.settings.get("westtek_metrics")
        if metrics is not None:
            metrics.observe_request(self)


def panel_routes(prefix: str) -> list[tuple[Any, ...]]:
    """The panel's routes under the service prefix (the API's stop endpoint included)."""
    env = r"(?P<env_id>[^/]+)"
    return [
        (rf"{prefix}/?", EnvironmentsPage),
        (rf"{prefix}/drift", DriftPage),
        (rf"{prefix}/sharing", SharingPage),
        (rf"{prefix}/succession", SuccessionPage),
        (rf"{prefix}/audit", AuditPage),
        (rf"{prefix}/oauth_callback", OAuthCallbackHandler),
        (rf"{prefix}/panel-static/(.*)", web.StaticFileHandler, {"path": str(ASSETS)}),
        (rf"{prefix}/api/environments/{env}/server", ServerStopHandler),
    ]
