"""Snapshots: list, take, read, compare, verify, restore and export them."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.ioloop import IOLoop

from westtek_core.kb.lab_client import visible_snapshots
from westtek_core.snapshot import EXPORT_FORMATS
from westtek_server_ext import models
from westtek_server_ext.handlers.base import Operation, WestTekAPIHandler


class SnapshotsHandler(WestTekAPIHandler):
    """``GET snapshots`` lists; ``POST snapshots`` starts a snapshot job."""

    operations = {
        "get": Operation("Every snapshot in the store", models.SnapshotList),
        "post": Operation(
            "Snapshot the environment (a background job)",
            models.Job,
            202,
            request=models.SnapshotCreate,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List the snapshots (without those of an environment handed over from the user)."""
        listing = await self.run(self.service.list_snapshots)
        listing["snapshots"] = await IOLoop.current().run_in_executor(
            None, visible_snapshots, listing["snapshots"]
        )
        self.reply(listing)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Start a snapshot."""
        wanted = self.body(models.SnapshotCreate)
        job = await self.run(
            self.service.start_snapshot, wanted.note, wanted.labels, wanted.baseline
        )
        self.accepted(job)


class SnapshotHandler(WestTekAPIHandler):
    """``GET snapshots/{id}``: one snapshot's manifest."""

    operations = {"get": Operation("A snapshot's manifest")}

    @web.authenticated
    @authorized
    async def get(self, snapshot_id: str) -> None:
        """Answer the manifest."""
        self.reply(await self.run(self.service.snapshot, snapshot_id))


class SnapshotDiffHandler(WestTekAPIHandler):
    """``GET snapshots/{a}/diff/{b}``: two snapshots compared, graded like drift."""

    operations = {"get": Operation("Compare two snapshots", models.DriftReport)}

    @web.authenticated
    @authorized
    async def get(self, snapshot_id: str, other_id: str) -> None:
        """Answer the comparison."""
        self.reply(await self.run(self.service.diff, snapshot_id, other_id))


class SnapshotVerifyHandler(WestTekAPIHandler):
    """``POST snapshots/{id}/verify``: re-read its objects in a background job."""

    operations = {"post": Operation("Verify a snapshot (a background job)", models.Job, 202)}

    @web.authenticated
    @authorized
    async def post(self, snapshot_id: str) -> None:
        """Start a verification."""
        self.accepted(await self.run(self.service.start_verify, snapshot_id))


class SnapshotRestoreHandler(WestTekAPIHandler):
    """``POST snapshots/{id}/restore``: restore into a new directory, in a background job."""

    operations = {
        "post": Operation(
            "Restore a snapshot into a new directory (a background job)",
            models.Job,
            202,
            request=models.RestoreRequest,
        )
    }

    @web.authenticated
    @authorized
    async def post(self, snapshot_id: str) -> None:
        """Start a restore."""
        wanted = self.body(models.RestoreRequest)
        job = await self.run(self.service.start_restore, snapshot_id, wanted.target, wanted.mode)
        self.accepted(job)


class SnapshotExportHandler(WestTekAPIHandler):
    """``GET snapshots/{id}/export?format=``: a lockfile to download."""

    operations = {
        "get": Operation(
            "A snapshot's packages as a lockfile",
            query={"format": "requirements, pylock or conda"},
            content_type="text/plain",
        )
    }

    @web.authenticated
    @authorized
    async def get(self, snapshot_id: str) -> None:
        """Answer the lockfile as an attachment."""
        fmt = self.get_argument("format", "requirements")
        if fmt not in EXPORT_FORMATS:
            raise web.HTTPError(400, f"format must be one of {', '.join(EXPORT_FORMATS)}")
        text = await self.run(self.service.export, snapshot_id, fmt)
        name = {"requirements": "requirements.txt", "pylock": "pylock.toml"}.get(
            fmt, "environment.yml"
        )
        self.set_header("Content-Disposition", f'attachment; filename="{snapshot_id[:12]}-{name}"')
        self.finish(text, set_content_type="text/plain; charset=utf-8")
