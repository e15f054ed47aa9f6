"""Status, the live environment and background jobs: what this server has and is doing."""

from __future__ import annotations

from pathlib import Path

from jupyter_core.paths import jupyter_path
from jupyter_server.auth.decorator import authorized
from tornado import web

from westtek_core.status import Capability, status_report
from westtek_server_ext import models
from westtek_server_ext.handlers.base import Operation, WestTekAPIHandler

LABEXTENSION_NAME = "westtek-labextension"
"""The lab extension's name: its directory under ``share/jupyter/labextensions``."""


def labextension_installed() -> bool:
    """Whether this server's JupyterLab can load the prebuilt West Tek lab extension."""
    return any(
        (Path(root) / LABEXTENSION_NAME / "package.json").exists()
        for root in jupyter_path("labextensions")
    )


class StatusHandler(WestTekAPIHandler):
    """``GET status``: version and the capabilities present on this server."""

    operations = {"get": Operation("Version and capabilities", models.StatusReport)}

    @web.authenticated
    @authorized
    def get(self) -> None:
        """Answer the status report."""
        present = [Capability.SERVER_EXTENSION]
        if labextension_installed():
            present.append(Capability.LAB_EXTENSION)
        self.finish(status_report("server-extension", extra=tuple(present)).to_json())


class EnvironmentHandler(WestTekAPIHandler):
    """``GET environment``: interpreters, packages, kernels, config and the drift status."""

    operations = {"get": Operation("The live environment", models.EnvironmentView)}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Answer the live environment."""
        self.reply(await self.run(self.service.environment_view))


class JobsHandler(WestTekAPIHandler):
    """``GET jobs``: this server's background jobs, newest first."""

    operations = {"get": Operation("Background jobs", models.JobList)}

    @web.authenticated
    @authorized
    def get(self) -> None:
        """List jobs."""
        self.reply({"jobs": [job.to_json() for job in self.service.jobs.jobs()]})


class JobHandler(WestTekAPIHandler):
    """``GET jobs/{id}``: one job's state and progress."""

    operations = {"get": Operation("A background job", models.Job)}

    @web.authenticated
    @authorized
    def get(self, job_id: str) -> None:
        """Answer the job."""
        job = self.service.jobs.get(job_id)
        if job is None:
            raise web.HTTPError(
                404, f"no job {job_id} on this server (jobs are kept until restart)"
            )
        self.reply(job.to_json())
