"""Taking over a predecessor's environment, and the page a take-over opens on."""

from __future__ import annotations

import asyncio
import html
from urllib.parse import urlencode

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.ioloop import IOLoop

from westtek_core.environment_service import EnvironmentService
from westtek_core.jobs import Job
from westtek_core.kb.take_over import START_PAGE_PARAMETER
from westtek_core.kb.take_over import records as take_over_records
from westtek_server_ext import models
from westtek_server_ext.handlers.base import Operation, WestTekAPIHandler

START_HERE_WAIT_SECONDS = 600
# a take-over waiting for archive storage waits hours: its page looks again now and then
START_HERE_REFRESH_SECONDS = 300


class TakeOverHandler(WestTekAPIHandler):
    """``POST take-over``: a predecessor's work and kernel into this workspace (a job)."""

    operations = {
        "get": Operation("The take-overs done in this workspace", models.TakeOvers),
        "post": Operation(
            "Take over a predecessor's environment from its latest snapshot (a background job)",
            models.Job,
            202,
            request=models.TakeOverRequest,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List the take-overs."""
        self.reply({"take_overs": await self.run(take_over_records)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Start a take-over."""
        wanted = self.body(models.TakeOverRequest)
        job = await self.run(self.service.start_take_over, wanted.environment_id,
                             wanted.predecessor, wanted.snapshot_id)  # fmt: skip
        self.accepted(job)


def waiting_page(job: Job, lab_url: str) -> str:
    """The page of a take-over waiting for its packs to come back from archive storage."""
    what = html.escape(job.description[:1].upper() + job.description[1:], quote=False)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{START_HERE_REFRESH_SECONDS}">
<title>West Tek: not taken over yet</title></head>
<body><h1>Not taken over yet</h1>
<p>{what}: {html.escape(job.progress.message, quote=False)}.</p>
<p>It comes into your workspace by itself once the data is back, and this page then opens
on its start page. The West Tek side bar shows the wait.</p>
<p><a href="{html.escape(lab_url)}">Open JupyterLab meanwhile</a></p>
</body></html>
"""


class StartHereHandler(ExtensionHandlerMixin, JupyterHandler):
    """``GET /westtek/start-here``: JupyterLab on the latest take-over's start page.

    A server launched to take over an environment opens here (its spawner's default URL),
    and the hub panel links here while a running server takes over: a take-over still
    running is waited for (up to ``START_HERE_WAIT_SECONDS``), so the page exists when
    JupyterLab opens. One waiting for its packs to come back from archive storage (hours)
    is not: the answer is a page saying so. The take-over chose the folder: only the server
    knows the page.
    """

    @web.authenticated
    async def get(self) -> None:
        """Redirect to the start page, or to JupyterLab when nothing was taken over."""
        service: EnvironmentService = self.settings["westtek_service"]

        def unfinished() -> list[Job]:
            return [j for j in service.jobs.jobs() if j.kind == "take-over" and j.finished is None]

        deadline = IOLoop.current().time() + START_HERE_WAIT_SECONDS
        while IOLoop.current().time() < deadline and any(not j.waiting for j in unfinished()):
            await asyncio.sleep(0.25)
        lab = self.base_url + "lab"
        if waiting := [j for j in unfinished() if j.waiting]:
            self.finish(waiting_page(waiting[0], lab))
            return
        done = await IOLoop.current().run_in_executor(None, take_over_records)
        start = {START_PAGE_PARAMETER: done[-1]["start_page"]} if done else {}
        self.redirect(lab + (f"?{urlencode(start)}" if start else ""))
