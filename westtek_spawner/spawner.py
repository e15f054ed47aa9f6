"""WestTekSpawner: one JupyterHub spawner whose ``backend`` trait picks where servers run.

``start``/``poll``/``stop`` are a template; a backend overrides only its hooks (see
``SpawnerBackend``), as dockerspawner's variants do. What every backend shares lives here:
profiles, per-lab quotas, the West Tek environment (lab, environment id, store), the
pre-start restore of the researcher's latest snapshot, progress events, waiting for the
server to answer, and reporting the container to the hub service.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import urlparse

from jupyterhub.spawner import Spawner
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Dict, Float, Integer, List, Unicode, default, observe, validate

from westtek_core.areas import AREAS as RESTORE_AREAS
from westtek_core.kb.take_over import START_URL
from westtek_core.labs import LabPolicy
from westtek_spawner import prestart
from westtek_spawner.backends import BACKENDS, SpawnerBackend, backend_class
from westtek_spawner.errors import SpawnError, SpawnRefused
from westtek_spawner.identity import SAFE_ID, EnvironmentIdentity
from westtek_spawner.profiles import (
    Profile,
    ProfileError,
    choose_profile,
    options_from_form,
    parse_profiles,
    render_options_form,
)
from westtek_spawner.report import (
    ask_auto_snapshot_environment,
    auto_snapshots_url,
    container_report_url,
    report_container,
)

ProgressEvent = dict[str, Any]
# Environment and snapshot ids the hub service passes in user_options.


class WestTekSpawner(EnvironmentIdentity, Spawner):
    """Spawn single-user servers through a West Tek backend (local, docker or ecs)."""

    backend = Unicode(
        "local",
        config=True,
        help=f"""Where single-user servers run: one of {", ".join(sorted(BACKENDS))}, or the
        dotted import path of a `westtek_spawner.backends.SpawnerBackend` subclass. `local`
        (the default) runs each server as a process of the hub's own user and needs no
        system accounts; `docker` runs a container per server through dockerspawner; `ecs`
        runs an AWS Fargate task per server with the researcher's EFS home.""",
    )

    @validate("backend")
    def _validate_backend(self, proposal: dict[str, Any]) -> str:
        name: str = proposal["value"]
        try:
            backend_class(name)
        except (ValueError, ImportError) as e:
            raise ValueError(f"WestTekSpawner.backend: {e}") from e
        return name

    @observe("backend")
    def _backend_changed(self, change: dict[str, Any]) -> None:
        self._backend = None

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return backend_class(self.backend).default_cmd()

    profile_list = List(
        Dict(),
        config=True,
        help="""The server sizes a researcher picks from on the spawn page. Each a dict:
        `slug` (required, letters/digits/dashes), `display_name`, `description`, `default`
        (true for at most one), `cpu` (vCPU: 0.25, 0.5, 1, 2, 4, 8 or 16), `memory_gib`
        (within what Fargate allows for that cpu), `image` (replaces the backend's image),
        `ephemeral_storage_gib` (21-200). No GPUs: Fargate has none. The choice is kept
        per named server (JupyterHub stores it with the server's options) and preselected
        next time. Empty (the default): no form, the backend's own size.""",
    )

    @validate("profile_list")
    def _validate_profile_list(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            parse_profiles(proposal["value"])
        except ProfileError as e:
            raise ValueError(f"WestTekSpawner.profile_list: {e}") from e
        return list(proposal["value"])

    @default("options_form")
    def _default_options_form(self) -> Any:
        def form(spawner: WestTekSpawner) -> str:
            if not spawner.profiles:
                return ""
            return render_options_form(spawner.profiles, spawner.user_options.get("profile"))

        return form

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        def check_options(spawner: WestTekSpawner, user_options: dict[str, Any]) -> None:
            # refuse a bad choice before anything starts
            spawner.chosen_profile(user_options)
            for key in (
                "westtek_environment",
                "westtek_restore_snapshot",
                "westtek_take_over",
                "westtek_predecessor",
                "westtek_take_over_snapshot",
            ):
                value = user_options.get(key)
                if value is not None and not SAFE_ID.fullmatch(str(value)):
                    raise SpawnRefused(f"{key} {value!r} is not a valid id", reason="options")

        return check_options

    restore_environment = Bool(
        config=True,
        help="""Before JupyterLab opens, put back what the researcher's latest snapshot
        holds (packages, kernels, Jupyter config: see `restore_areas`) when the live
        environment differs from it, as after a fresh container lost their installs. Runs
        inside the server's own environment as a pre-start step of its command, shown as a
        progress stage; a failed restore is reported and the server starts anyway. Set
        False to start servers exactly as the image or environment is. Default: on for
        the docker and ecs backends (fresh containers), off for local (the hub's machine
        keeps its environment, and its Python may be shared by every user).""",
    )

    @default("restore_environment")
    def _default_restore_environment(self) -> bool:
        return backend_class(self.backend).restores_by_default

    restore_areas = List(
        Unicode(),
        default_value=[str(area) for area in RESTORE_AREAS],
        config=True,
        help="What the pre-start restore puts back: any of packages, kernels, config.",
    )

    @validate("restore_areas")
    def _validate_restore_areas(self, proposal: dict[str, Any]) -> list[str]:
        unknown = sorted(set(proposal["value"]) - set(RESTORE_AREAS))
        if unknown:
            raise ValueError(
                f"WestTekSpawner.restore_areas: {', '.join(unknown)} unknown; "
                f"choose from {', '.join(RESTORE_AREAS)}"
            )
        return list(proposal["value"])

    prestart_command = List(
        Unicode(),
        config=True,
        help="""How the server's environment runs the pre-start restore; the server's own
        command follows after `--`. Default: the backend's Python with
        `-m westtek_spawner.prestart` (the hub's interpreter for local servers, `python` in
        a container image).""",
    )

    @default("prestart_command")
    def _default_prestart_command(self) -> list[str]:
        return [*backend_class(self.backend).default_python(), "-m", "westtek_spawner.prestart"]

    environment_id_template = Unicode(
        "{username}",
        config=True,
        help="""The West Tek environment id of a user's default server (`{username}` is
        filled in); a named server's id is this plus `:{servername}`. Snapshots, drift and
        the hub service's Environment record are keyed by it. The hub service registers a
        new environment only under its owner's namespace (the user's name, or it followed by
        `:`), so a template must keep `{username}` first and bare or followed by `:`.""",
    )

    lab_group_prefix = Unicode(
        "lab-",
        config=True,
        help="""JupyterHub groups named with this prefix are labs (lab-<id>), as for the hub
        service (WestTekHubService.lab_group_prefix; configure both alike). A user's first
        lab by group name is their server's: it goes to the server as WESTTEK_LAB_ID, tags
        its AWS resources and counts against the lab's quota.""",
    )

    lab_groups = List(
        Unicode(),
        config=True,
        help="""Other JupyterHub group names that are labs (the demo's vault-13, vault-101),
        as for the hub service (WestTekHubService.lab_groups; configure both alike).""",
    )

    lab_group_pattern = Unicode(
        "",
        config=True,
        help="""Deprecated: use `lab_groups` or `lab_group_prefix`. A regular expression;
        groups whose whole name matches it are labs too.""",
    )

    @property
    def lab_policy(self) -> LabPolicy:
        """Which groups are labs (the rule the hub service applies too)."""
        return LabPolicy(self.lab_group_prefix, frozenset(self.lab_groups), self.lab_group_pattern)

    lab_quotas = Dict(
        value_trait=Integer(),
        config=True,
        help="""Most servers each lab may run at once, by lab id ({"vault-13": 20}); labs
        not listed get `default_lab_quota`. A spawn beyond it is refused with a message
        saying so.""",
    )

    default_lab_quota = Integer(
        0,
        config=True,
        help="Most servers a lab not in `lab_quotas` may run at once; 0: no limit.",
    )

    store_template = Unicode(
        "",
        config=True,
        help="""The snapshot store the server uses, as WESTTEK_STORE (a directory or
        s3://bucket/prefix); `{lab_id}`, `{username}`, `{environment_id}` are filled in,
        e.g. `s3://westtek-snapshots/labs/{lab_id}/`. Empty: the server's own default.""",
    )

    report_to_hub_service = Bool(
        True,
        config=True,
        help="""After a successful start, PUT the server's container facts (task ARN,
        cluster, Jupyter URL, EFS access point, image digest) to the West Tek hub
        service's Environment record. Failures are logged and never fail the spawn.""",
    )

    hub_service_name = Unicode(
        "westtek", config=True, help="The JupyterHub service name of the West Tek hub service."
    )

    hub_service_base_url = Unicode(
        "",
        config=True,
        help="""Where the hub reaches `services/<name>/…`: the proxy's public URL (default),
        or any URL in front of the hub service.""",
    )

    answer_poll_interval = Float(
        0.5,
        config=True,
        help="Seconds between checks while waiting for a started server to answer HTTP.",
    )

    # Servers each lab runs now, by lab id: what quotas count. Shared by the hub's spawners.
    _lab_servers: ClassVar[dict[str, set[str]]] = {}

    _backend: SpawnerBackend | None = None
    _progress_events: list[ProgressEvent]
    _start_finished: asyncio.Event | None = None
    _progress_changed: asyncio.Event | None = None
    _report_task: asyncio.Future[bool] | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._progress_events = []
        self.lab_id = ""
        self.profile_slug = ""
        self.auto_snapshot_env: dict[str, str] = {}

    # -- what every backend shares -----------------------------------------------------------

    @property
    def backend_impl(self) -> SpawnerBackend:
        """The backend instance, created on first use from the ``backend`` trait."""
        if self._backend is None:
            self._backend = backend_class(self.backend)(spawner=self)
        return self._backend

    @property
    def profiles(self) -> list[Profile]:
        """The configured profiles, checked."""
        return parse_profiles(self.profile_list)

    def chosen_profile(self, user_options: dict[str, Any] | None = None) -> Profile | None:
        """The profile of this spawn: the one asked for, else the default; None without any.

        An unknown profile is refused with the list of choices.
        """
        options = self.user_options if user_options is None else user_options
        try:
            return choose_profile(self.profiles, options.get("profile") or None)
        except ProfileError as e:
            raise SpawnRefused(str(e).capitalize(), reason="profile") from None

    def find_lab_id(self) -> str:
        """The user's lab: their first lab group by name (see ``lab_policy``), or ''."""
        groups = getattr(self.user, "groups", []) or []
        return self.lab_policy.user_lab(getattr(g, "name", str(g)) for g in groups)

    def template_namespace(self) -> dict[str, Any]:
        """JupyterHub's namespace plus servername, lab_id, environment_id and profile."""
        namespace: dict[str, Any] = super().template_namespace()
        namespace.update(
            servername=self.name,
            lab_id=self.lab_id or self.find_lab_id(),
            environment_id=self.environment_id,
            profile=self.profile_slug,
        )
        return namespace

    def report_progress(self, progress: int, message: str) -> None:
        """Add a progress event for the spawn page (backends call this for their stages)."""
        if self._progress_events and self._progress_events[-1]["message"] == message:
            return
        self._progress_events.append({"progress": progress, "message": message})
        if self._progress_changed is not None:
            self._progress_changed.set()
        self.log.info("%s: %s", self._log_name, message)

    def get_args(self) -> list[str]:
        """The server's arguments, plus --allow-root as root (Jupyter refuses root otherwise)."""
        args: list[str] = list(super().get_args())
        if self.backend_impl.runs_as_hub_user and os.geteuid() == 0 and "--allow-root" not in args:
            args.append("--allow-root")
        return args

    async def ask_auto_snapshot_settings(self) -> None:
        """Ask the hub service for the lab's automatic-snapshot settings (before each start).

        They reach the server as variables (``get_env``) its traits default from. Without an
        answer (no lab, reports off, the service down) the server runs the defaults.
        """
        self.auto_snapshot_env = {}
        base = self._hub_service_base() if self.report_to_hub_service and self.lab_id else ""
        if base:
            url = auto_snapshots_url(base, self.lab_id, self.hub_service_name)
            self.auto_snapshot_env = await ask_auto_snapshot_environment(
                url, self.api_token, self.log
            )

    def get_env(self) -> dict[str, str]:
        """JupyterHub's environment plus West Tek's: lab, environment id, store, lab settings."""
        env: dict[str, str] = super().get_env()
        env["WESTTEK_ENVIRONMENT_ID"] = self.environment_id
        env["WESTTEK_LAB_ID"] = self.lab_id or self.find_lab_id()
        env.update(self.auto_snapshot_env)
        if self.store_template:
            env["WESTTEK_STORE"] = self.format_string(self.store_template)
        if self.take_over:
            env["JUPYTERHUB_DEFAULT_URL"] = START_URL  # the take-over's start page
        hub_origin = self.proxy_origin()
        if hub_origin and not env.get("JUPYTERHUB_PUBLIC_HUB_URL"):
            # without JupyterHub.public_url the server learns no address of the hub's proxy,
            # through which it reports snapshots and drift to the West Tek hub service
            env.setdefault("JUPYTERHUB_URL", hub_origin)
        return env

    def proxy_origin(self) -> str:
        """The origin of the hub's proxy as the hub binds it, if it names a reachable host."""
        proxy = (getattr(self.user, "settings", None) or {}).get("proxy")
        parsed = urlparse(str(getattr(proxy, "public_url", "") or ""))
        if parsed.scheme not in ("http", "https") or parsed.hostname in (None, "", "0.0.0.0", "::"):
            return ""
        return f"{parsed.scheme}://{parsed.netloc}"

    def server_command(self) -> list[str]:
        """The command the backend runs: the server's, behind the pre-start restore if on.

        A server the hub service launched from a snapshot
        (``user_options["westtek_restore_snapshot"]``) restores that snapshot, whatever
        ``restore_environment`` says: it was asked for explicitly. A take-over launch runs
        the pre-start step for the take-over even when restoring is off.
        """
        command = [*self.cmd, *self.get_args()]
        snapshot = self.user_options.get("westtek_restore_snapshot")
        if snapshot and not SAFE_ID.fullmatch(str(snapshot)):
            snapshot = None
        restore = bool(snapshot) or (self.restore_environment and bool(self.restore_areas))
        if not restore and not self.take_over:
            return command
        areas = self.restore_areas or list(RESTORE_AREAS)
        args = [arg for area in areas for arg in ("--only", area)] if restore else []
        if not restore:
            args.append("--skip-restore")
        if self.take_over:
            environment, predecessor = self.take_over
            args += ["--take-over", environment, "--predecessor", predecessor]
            chosen = self.user_options.get("westtek_take_over_snapshot")
            if chosen and SAFE_ID.fullmatch(str(chosen)):
                args += ["--take-over-snapshot", str(chosen)]
        if snapshot:
            args += ["--snapshot", str(snapshot)]
        if self.internal_ssl:
            args += ["--linger", "0"]  # nobody watches a TLS server's status: no need to wait
        return [*self.prestart_command, *args, "--", *command]

    # -- quotas ----------------------------------------------------------------------------

    @property
    def _quota_key(self) -> str:
        return f"{self.user.name}/{self.name}"

    def _reserve_quota(self) -> None:
        lab = self.lab_id
        running = self._lab_servers.setdefault(lab, set())
        limit = self.lab_quotas.get(lab, self.default_lab_quota)
        if limit and self._quota_key not in running and len(running) >= limit:
            raise SpawnRefused(
                f"Lab {lab or '(none)'} already runs {len(running)} servers, its limit: "
                "stop one of the lab's servers or ask a hub admin to raise the quota",
                reason="quota",
                status_code=429,
            )
        running.add(self._quota_key)

    def _release_quota(self) -> None:
        for running in self._lab_servers.values():
            running.discard(self._quota_key)

    # -- the template ----------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        """Prepare, launch and wait through the backend, reporting progress at each stage."""
        self._progress_events = []
        self._start_finished = asyncio.Event()
        self._progress_changed = asyncio.Event()
        backend = self.backend_impl
        try:
            profile = self.chosen_profile()
            self.profile_slug = profile.slug if profile else ""
            self.lab_id = self.find_lab_id()
            await self.ask_environment_id()
            await self.ask_auto_snapshot_settings()
            self._reserve_quota()
            if profile is not None:
                self.report_progress(5, f"Profile: {profile.display_name}")
            self.report_progress(10, f"Preparing the {backend.name} environment")
            await backend.prepare()
            self.report_progress(30, "Launching the notebook server")
            await backend.launch(self.server_command(), self.get_env())
            self.report_progress(40, "Waiting for the notebook server to run")
            ip, port = await backend.wait_until_running()
            self.report_progress(78, f"Notebook server running at {ip}:{port}")
            await self._wait_until_answering(ip, port)
            self.report_progress(95, "Notebook server answering")
            if self.report_to_hub_service:
                self._report_task = asyncio.ensure_future(self._report_container(ip, port))
            return ip, port
        except BaseException:
            self._release_quota()
            raise
        finally:
            self._start_finished.set()
            self._progress_changed.set()

    async def _wait_until_answering(self, ip: str, port: int) -> None:
        """Follow the pre-start restore's stages, then wait for the server to answer HTTP.

        While it restores, the pre-start step answers every request with 503 and a JSON
        status (header ``X-WestTek-Prestart``): its stages become progress events. The first
        answer without that header is the real server. A server that exits meanwhile fails
        the spawn at once with the backend's reason instead of waiting out the timeout.
        """
        if self.internal_ssl:
            return  # JupyterHub's own wait checks TLS servers
        client = AsyncHTTPClient()
        url = f"http://{ip}:{port}/"
        next_poll = time.monotonic() + 2.0
        while True:
            request = HTTPRequest(
                url, follow_redirects=False, connect_timeout=2.0, request_timeout=5.0
            )
            try:
                response = await client.fetch(request, raise_error=False)
            except (OSError, HTTPClientError):
                response = None  # not listening yet (or between pre-start and server)
            if response is not None and response.code != 599:
                if prestart.STATUS_HEADER not in response.headers:
                    return
                try:
                    status = json.loads(response.body or b"{}")
                except ValueError:
                    status = {}
                if status.get("message"):
                    self.report_progress(int(status.get("progress", 80)), str(status["message"]))
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + 2.0
                exit_status = await self.backend_impl.poll_while_starting()
                if exit_status is not None:
                    raise SpawnError(self.backend_impl.exit_message(exit_status))
            await asyncio.sleep(self.answer_poll_interval)

    def public_server_url(self) -> str:
        """The researcher-facing URL of this server (the proxy's public URL + its prefix)."""
        proxy = getattr(self.user, "settings", {}).get("proxy")
        root = (getattr(proxy, "public_url", "") or "").rstrip("/")
        prefix = self.server.base_url if self.server is not None else self.user.url
        return f"{root}{prefix}"

    async def _report_container(self, ip: str, port: int) -> bool:
        base = self._hub_service_base()
        if not base:
            self.log.warning("No hub service URL to report %s's container to", self._log_name)
            return False
        info = {"jupyter_url": self.public_server_url(), **self.backend_impl.container_info()}
        url = container_report_url(base, self.environment_id, self.hub_service_name)
        return await report_container(
            url, self.api_token, info, self.backend_impl.image_digest(), self.log
        )

    async def progress(self) -> AsyncIterator[ProgressEvent]:
        """Yield each stage's event the moment ``start`` reaches it.

        JupyterHub stops reading as soon as the spawn is done, so events are handed over
        when they happen, not on a timer that could leave the last ones unread.
        """
        sent = 0
        while True:
            while sent < len(self._progress_events):
                yield self._progress_events[sent]
                sent += 1
            if self._start_finished is None or self._start_finished.is_set():
                break
            changed = self._progress_changed
            assert changed is not None  # made with _start_finished
            await changed.wait()
            changed.clear()

    async def poll(self) -> int | None:
        """None while the backend's server runs, else its exit status."""
        status = await self.backend_impl.poll()
        if status is not None:
            self._release_quota()
        return status

    async def stop(self, now: bool = False) -> None:
        """Stop the backend's server."""
        try:
            await self.backend_impl.stop(now=now)
        finally:
            self._release_quota()

    def get_state(self) -> dict[str, Any]:
        """Save the backend's name and its state so a restarted hub finds running servers.

        ``lab_id`` is kept so the restarted hub counts the server against the right quota;
        ``profile`` says what the server runs. Backends may keep facts that outlive a server
        (the ECS access point and task definitions): JupyterHub saves whatever this returns
        after ``clear_state``, too.
        """
        state: dict[str, Any] = super().get_state()
        backend_state = self.backend_impl.get_state()
        if backend_state:
            state["westtek"] = {
                "backend": self.backend,
                "lab_id": self.lab_id,
                "profile": self.profile_slug,
                # the id the hub service named, after a hand-over (else the default)
                **({"own_environment_id": own} if (own := self._own_environment_id) else {}),
                **backend_state,
            }
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the backend state saved by ``get_state``."""
        super().load_state(state)
        saved = state.get("westtek")
        if not saved:
            return
        if saved.get("backend") != self.backend:
            self.log.warning(
                "%s was started by the %r backend, now %r: forgetting it",
                self._log_name,
                saved.get("backend"),
                self.backend,
            )
            return
        self.lab_id = str(saved.get("lab_id", ""))
        self.profile_slug = str(saved.get("profile", ""))
        self._own_environment_id = str(saved.get("own_environment_id", ""))
        self.backend_impl.load_state(saved)
        if self.backend_impl.holds_server():
            self._lab_servers.setdefault(self.lab_id, set()).add(self._quota_key)

    def clear_state(self) -> None:
        """Forget the backend's server."""
        super().clear_state()
        self.backend_impl.clear_state()
        self._release_quota()
