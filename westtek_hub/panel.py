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
"""

from __future__ import annotations

import asyncio
import binascii
import json
import os
import re
import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

import jinja2
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.services.auth import HubAuth, HubOAuthCallbackHandler, UserNotAllowed
from jupyterhub.utils import url_path_join
from sqlalchemy import select
from sqlalchemy.orm import Session
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import List, Unicode
from traitlets.config import LoggingConfigurable

from westtek_core.version import __version__
from westtek_core.wire import DRIFT_STATUSES, epoch_time
from westtek_hub import audit, registry
from westtek_hub.api_base import APIHandler, HubClient
from westtek_hub.models import AuditEntry, DriftEvent, Environment, Lab, Researcher, Share, Snapshot
from westtek_hub.registry import Caller
from westtek_hub.snapshot_records import snapshot_json

TEMPLATES = Path(__file__).parent / "templates"
ASSETS = Path(__file__).parent / "static"
JUPYTERHUB_TEMPLATES = Path(DATA_FILES_PATH) / "templates"
JUPYTERHUB_STATIC = Path(DATA_FILES_PATH) / "static"
TIMELINE_DAYS = 30
AUDIT_PAGE_SIZE = 200
SERVICES_CACHE_SECONDS = 60.0
# Bootstrap's contextual colour of each drift status
DRIFT_CLASSES = {"STABLE": "success", "MINOR_DRIFT": "warning", "CRITICAL_DRIFT": "danger"}
ACTING = ("own", "lab-admin", "admin")


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


# -- what the pages show (pure functions of the registry and the caller) ----------------


def researcher_of(row: Mapping[str, Any]) -> str:
    """An environment row's researcher."""
    return str(row["researcher_id"])


def visible_environments(
    session: Session,
    caller: Caller,
    lab: str | None = None,
    drift: str | None = None,
    researcher: str | None = None,
) -> list[dict[str, Any]]:
    """What ``GET api/environments`` shows the caller, also filtered by researcher."""
    rows = registry.list_environments(session, caller, lab or None, drift or None)
    return [r for r in rows if not researcher or researcher_of(r) == researcher]


def group_by_lab(rows: Iterable[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows grouped by lab, labs in name order, rows in their given order."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row["lab_id"])].append(row)
    return sorted(groups.items())


def restorable_shares(session: Session, caller: Caller) -> dict[str, list[str]]:
    """Per environment, the snapshots shared with the caller's labs for restoring."""
    found: dict[str, list[str]] = defaultdict(list)
    if not caller.labs:
        return found
    query = (
        select(Snapshot.environment_id, Share.snapshot_id)
        .join(Snapshot, Snapshot.id == Share.snapshot_id)
        .where(
            Share.to_lab.in_(sorted(caller.labs)),
            Share.revoked_at.is_(None),
            Share.permission == "restore",
        )
        .order_by(Snapshot.timestamp.desc())
    )
    for env_id, snap_id in session.execute(query):
        if snap_id not in found[env_id]:
            found[env_id].append(snap_id)
    return found


def server_name_of(container_info: Mapping[str, Any], user: str) -> str:
    """The hub server an environment's container runs as (from its reported Jupyter URL)."""
    named = container_info.get("server_name")
    if isinstance(named, str):
        return named
    path = urlparse(str(container_info.get("jupyter_url") or "")).path
    match = re.search(r"/user/([^/]+)/([^/]*)/?$", path)
    if match and unquote(match.group(1)) == user:
        return unquote(match.group(2))
    return ""


def http_url(value: Any) -> str:
    """``value`` if it is an http(s) URL or an absolute path, else "" (never ``javascript:``)."""
    text = str(value or "")
    parsed = urlparse(text)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return text
    return text if text.startswith("/") and not text.startswith("//") else ""


def from_epoch(value: Any) -> str | None:
    """Epoch seconds as an ISO 8601 UTC time (None if not a time a report may carry)."""
    when = epoch_time(value)
    return when.isoformat() if when else None


def server_state(server: Mapping[str, Any] | None) -> str:
    """``running``, ``starting``, ``stopping`` or ``stopped`` from a hub server model."""
    if not server:
        return "stopped"
    pending = server.get("pending")
    if pending == "spawn":
        return "starting"
    if pending == "stop":
        return "stopping"
    return "running" if server.get("ready") else "stopped"


def environment_actions(row: Mapping[str, Any], shared: Sequence[str]) -> dict[str, Any]:
    """What the panel offers on a row, mirroring what the API allows for its access."""
    access = row["access"]
    acting = access in ACTING
    launch_snapshot = None
    if access == "lab":
        launch_snapshot = row.get("last_snapshot_id")
    elif access == "shared-restore" and shared:
        launch_snapshot = shared[0]
    return {
        "launch": acting,
        "launch_snapshot": launch_snapshot,
        "stop": acting and row["server_state"] in ("running", "starting"),
        "snapshot": acting and row["server_state"] == "running",
        "share": acting and bool(row.get("last_snapshot_id")),
    }


def can_reassign(caller: Caller, env: Mapping[str, Any]) -> bool:
    """Whether the caller may hand the environment to a successor (lab or hub admins)."""
    return caller.admin or (env["lab_id"] in caller.admin_labs and env["access"] != "own")


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


def visible_shares(session: Session, caller: Caller) -> list[dict[str, Any]]:
    """Active shares from or to the caller's labs (all for hub admins), newest first."""
    query = select(Share).where(Share.revoked_at.is_(None)).order_by(Share.id.desc())
    rows = []
    for share in session.scalars(query):
        if caller.admin or share.from_lab in caller.labs or share.to_lab in caller.labs:
            snap = session.get(Snapshot, share.snapshot_id)
            env = session.get(Environment, snap.environment_id) if snap else None
            access = registry.access_to(session, caller, env) if env else None
            rows.append(
                registry.share_json(share)
                | {
                    "environment_id": snap.environment_id if snap else None,
                    "can_revoke": access in ACTING,
                }
            )
    return rows


def shareable_snapshots(session: Session, caller: Caller) -> list[dict[str, Any]]:
    """Snapshots of environments the caller may act on (own, lab-admin, admin), newest first."""
    acting = {
        str(r["id"]): r
        for r in registry.list_environments(session, caller)
        if r["access"] in ACTING
    }
    if not acting:
        return []
    query = (
        select(Snapshot)
        .where(Snapshot.environment_id.in_(sorted(acting)))
        .order_by(Snapshot.timestamp.desc())
    )
    return [
        snapshot_json(s) | {"lab_id": acting[s.environment_id]["lab_id"]}
        for s in session.scalars(query)
    ]


def known_labs(session: Session) -> list[str]:
    """Every lab the registry knows (targets for a share)."""
    return list(session.scalars(select(Lab.id).order_by(Lab.id)))


def known_researchers(session: Session) -> list[str]:
    """Every researcher the registry knows (candidates for a successor)."""
    return list(session.scalars(select(Researcher.name).order_by(Researcher.name)))


@dataclass(frozen=True)
class AuditFilters:
    """The audit view's filters (empty: any)."""

    actor: str = ""
    action: str = ""
    outcome: str = ""
    lab: str = ""


def audit_view(
    session: Session, caller: Caller, filters: AuditFilters, limit: int = AUDIT_PAGE_SIZE
) -> dict[str, Any]:
    """The chain's verification and the newest matching entries (hub admins only)."""
    if not caller.admin:
        raise registry.Denied(f"{caller.name} is not a hub admin: the audit log is theirs")
    entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    ok, checked, problem = audit.verify_chain(entries, audit.chain_of(session))
    matching = [
        e
        for e in reversed(entries)
        if (not filters.actor or e.actor == filters.actor)
        and (not filters.action or e.action == filters.action)
        and (not filters.outcome or e.outcome == filters.outcome)
        and (not filters.lab or e.lab_id == filters.lab)
    ]
    return {
        "verified": ok,
        "checked": checked,
        "problem": None if ok else problem,
        "entries": [audit.to_json(e) for e in matching[:limit]],
        "matching": len(matching),
        "actions": sorted({e.action for e in entries}),
        "actors": sorted({e.actor for e in entries}),
        "labs": sorted({e.lab_id for e in entries if e.lab_id}),
    }


# -- the hub: running servers and the Services menu -------------------------------------


async def active_servers(hub: HubClient, page: int = 200) -> dict[str, dict[str, Any]] | None:
    """Every active user's servers from ``GET users?state=active``; None if the hub refuses."""
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        try:
            items = await hub.request("GET", f"users?state=active&offset={offset}&limit={page}")
        except (HTTPClientError, OSError, ValueError):
            return None
        if not isinstance(items, list):
            return None
        for user in items:
            found[str(user.get("name"))] = dict(user.get("servers") or {})
        if len(items) < page:
            return found
        offset += page


async def servers_of(hub: HubClient, users: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The servers of ``users``: one walk of the active users, else one call per user."""
    names = sorted(set(users))
    active = await active_servers(hub) if names else {}
    if active is not None:
        return {name: active.get(name, {}) for name in names}

    async def one(name: str) -> dict[str, Any]:
        try:
            model = await hub.user(name)
        except (HTTPClientError, OSError):
            return {}
        return dict((model or {}).get("servers") or {})

    found = await asyncio.gather(*(one(n) for n in names))
    return dict(zip(names, found, strict=True))


@dataclass
class ServicesMenu:
    """The hub's services for the nav bar's Services menu, cached briefly."""

    fetched: float = 0.0
    services: list[dict[str, str]] | None = None

    async def get(self, hub: HubClient, own: dict[str, str]) -> list[dict[str, str]]:
        """``[{name, href}]`` of displayed services; only this one if the hub won't say."""
        loop = asyncio.get_running_loop()
        if self.services is not None and loop.time() - self.fetched < SERVICES_CACHE_SECONDS:
            return self.services
        try:
            models = await hub.request("GET", "services")
        except (HTTPClientError, OSError, ValueError):
            models = None  # the service's role lacks read:services: list itself only
        services = [own]
        if isinstance(models, dict):
            services = [
                {"name": str(name), "href": str(m.get("prefix") or "")}
                for name, m in sorted(models.items())
                if isinstance(m, dict) and m.get("display", True) and m.get("prefix")
            ] or [own]
        self.services, self.fetched = services, loop.time()
        return services


# -- handlers ------------------------------------------------------------------------------


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


def predecessor_of(caller: Caller, package: dict[str, Any]) -> str | None:
    """Who handed the package's environment to the caller, if they hold it and may take it over.

    ``environments/take-over`` decides; this only offers the button.
    """
    if package["environment"]["researcher_id"] != caller.name or not package["snapshots"]:
        return None
    handed = [t for t in package.get("transfers") or [] if t.get("to") == caller.name]
    return str(handed[-1]["from"]) if handed else None


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
            await self.audited_hub_request(
                caller, "server.stop", env.id, env.lab_id, detail, "DELETE", path
            )
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
