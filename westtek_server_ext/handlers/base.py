"""What every West Tek handler shares: the service, JSON bodies, domain errors as 4xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado import web
from tornado.ioloop import IOLoop

from westtek_core.environment_service import USER_ERRORS, EnvironmentService
from westtek_core.request_input import MAX_INT, BadInput, parse_count, parse_json
from westtek_core.store import SnapshotNotFound, StoreLockedError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    """What one verb of a route takes and answers, for the OpenAPI document."""

    summary: str
    response: type[BaseModel] | None = None
    status: int = 200
    request: type[BaseModel] | None = None
    query: dict[str, str] = field(default_factory=dict)  # name → description
    content_type: str = "application/json"


class WestTekAPIHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every West Tek handler: the service, JSON bodies, domain errors as 4xx."""

    auth_resource = "westtek"
    operations: ClassVar[dict[str, Operation]] = {}

    @property
    def service(self) -> EnvironmentService:
        """The one service object the extension keeps in the settings."""
        service: EnvironmentService = self.settings["westtek_service"]
        return service

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking core work in a thread; its domain errors become JSON 4xx answers."""
        try:
            return await IOLoop.current().run_in_executor(None, fn, *args)
        except SnapshotNotFound as e:
            raise web.HTTPError(404, str(e)) from e
        except StoreLockedError as e:
            raise web.HTTPError(409, str(e)) from e
        except USER_ERRORS as e:
            raise web.HTTPError(400, str(e)) from e

    def body(self, model: type[M]) -> M:
        """The request body validated by ``model``; a bad body is a 400 naming the field."""
        try:
            raw = parse_json(self.request.body or b"{}")
        except BadInput as e:
            raise web.HTTPError(400, str(e)) from None
        try:
            return model.model_validate(raw)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise web.HTTPError(400, f"{where}: {first['msg']}") from e

    def int_argument(self, name: str, default: int, maximum: int = MAX_INT) -> int:
        """A query argument: an integer from 0 to ``maximum``."""
        try:
            return parse_count(self.get_argument(name, str(default)), f"query argument {name}",
                               maximum=maximum)  # fmt: skip
        except BadInput as e:
            raise web.HTTPError(400, str(e)) from None

    def reply(self, payload: Any, status: int = 200) -> None:
        """Answer JSON."""
        self.set_status(status)
        self.finish(json.dumps(payload, default=str))

    def accepted(self, job: Any) -> None:
        """Answer 202 with a job and where to poll it."""
        self.set_header("Location", f"{self.base_url}westtek/api/jobs/{job.id}")
        self.reply(job.to_json(), 202)
