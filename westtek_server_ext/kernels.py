"""Stale kernels: ask the server's running kernels what they imported, after each change.

The wiring only: what is asked, how the answer is read and compared with the disk, and
which drift events that makes live in :mod:`westtek_core.drift.stale_kernels` and
``EnvironmentService.check_kernel``. Here, each kernel is sent the probe (a silent execute
request on its shell channel) when it starts or restarts and after each change the drift
watcher graded; a restart or shutdown resolves its stale changes at once.

A kernel busy with a long cell answers only when the cell ends: the check waits
``answer_seconds`` for it, then compares the kernel's previous answer with the disk (what
it imported before that cell); the one request left queued is applied whenever its answer
comes, and no second one is queued beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from queue import Empty
from typing import Any

from tornado.ioloop import IOLoop

from westtek_core.drift.stale_kernels import (
    LoadedDistribution,
    ProbeReplyError,
    parse_probe_reply,
    probe_request,
)
from westtek_core.drift.watch import is_interpreter_area
from westtek_core.environment_service import EnvironmentService, Message

KERNEL_ACTIONS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
"""jupyter_server's event schema for kernel starts, restarts and shutdowns."""

log = logging.getLogger(__name__)


class KernelWatch:
    """Keep ``service``'s stale kernels current for every kernel ``kernel_manager`` runs."""

    def __init__(
        self,
        service: EnvironmentService,
        kernel_manager: Any,
        session_manager: Any,
        *,
        answer_seconds: float = 1.5,
        queued_seconds: float = 3600.0,
    ) -> None:
        self.service = service
        self.kernel_manager = kernel_manager
        self.session_manager = session_manager
        # how long a check waits for a kernel's answer, and how long a queued request may
        # wait behind a running cell before it is given up
        self.answer_seconds = answer_seconds
        self.queued_seconds = queued_seconds
        self._pending: dict[str, asyncio.Task[None]] = {}
        # each kernel's last answer: compared with the disk again while the kernel is busy
        self._records: dict[str, dict[str, LoadedDistribution]] = {}
        self._loop: IOLoop | None = None
        self._unsubscribe: Any = None
        self._event_logger: Any = None

    def start(self, event_logger: Any) -> None:
        """Listen to the watcher's changes and to the kernels' starts and restarts."""
        self._loop = IOLoop.current()
        self._unsubscribe = self.service.subscribe(self._on_message)
        self._event_logger = event_logger
        event_logger.add_listener(schema_id=KERNEL_ACTIONS, listener=self._on_kernel_action)

    def stop(self) -> None:
        """Stop listening: the server shutting its kernels down is no news.

        Requests still queued in kernels are left to them.
        """
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self._event_logger is not None:
            # before any kernel started, the schema is not registered: nothing to remove
            with contextlib.suppress(KeyError):
                self._event_logger.remove_listener(
                    schema_id=KERNEL_ACTIONS, listener=self._on_kernel_action
                )
            self._event_logger = None
        self._loop = None
        for task in self._pending.values():
            task.cancel()

    def _on_message(self, message: Message) -> None:
        # only installs matter (not a saved notebook); asked from the server's loop, not
        # the watcher's thread
        if message.get("type") != "changed" or self._loop is None:
            return
        if any(is_interpreter_area(area) for area in message.get("areas", ())):
            self._loop.add_callback(self.check_all)

    async def _on_kernel_action(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        kernel_id = data.get("kernel_id")
        if not kernel_id or data.get("status") != "success" or self._loop is None:
            return
        action = data.get("action")
        if action in ("restart", "shutdown"):
            # a new process (or none): what the old one imported is no longer run
            self._cancel(kernel_id)
            await IOLoop.current().run_in_executor(None, self.service.forget_kernel, kernel_id)
        if action in ("start", "restart"):
            # the recorder goes in before the researcher's first cell
            await self.check(kernel_id)

    def _cancel(self, kernel_id: str) -> None:
        self._records.pop(kernel_id, None)
        task = self._pending.pop(kernel_id, None)
        if task:
            task.cancel()

    async def check_all(self) -> None:
        """Check every running kernel (a kernel gone since is forgotten)."""
        running = set(self.kernel_manager.list_kernel_ids())
        for gone in set(self._pending) - running:
            self._cancel(gone)
        loop = IOLoop.current()
        for kernel_id in self.service.stale_kernels.kernels() - running:
            await loop.run_in_executor(None, self.service.forget_kernel, kernel_id)
        await asyncio.gather(*(self.check(k) for k in sorted(running)))

    async def check(self, kernel_id: str) -> None:
        """Ask one kernel (unless it still has a question queued) and apply its answer."""
        if not self._speaks_python(kernel_id):
            return  # the probe is Python: sent to an R or bash kernel it would be run as such
        task = self._pending.get(kernel_id)
        if task is None or task.done():
            task = asyncio.ensure_future(self._ask_and_apply(kernel_id))
            self._pending[kernel_id] = task
        try:
            await asyncio.wait_for(asyncio.shield(task), self.answer_seconds)
        except asyncio.TimeoutError:
            log.debug("kernel %s is busy: its answer will be applied when it comes", kernel_id)
            if kernel_id in self._records:
                await self._apply(kernel_id, self._records[kernel_id])
        except asyncio.CancelledError:
            if not task.cancelled():
                raise

    def _speaks_python(self, kernel_id: str) -> bool:
        try:
            spec = self.kernel_manager.get_kernel(kernel_id).kernel_spec
        except Exception:  # noqa: BLE001 — a kernel gone or a spec unreadable: not asked
            return False
        return spec is not None and str(spec.language).lower().startswith("python")

    async def _ask_and_apply(self, kernel_id: str) -> None:
        try:
            loaded = await self._ask(kernel_id)
            self._records[kernel_id] = loaded
            await self._apply(kernel_id, loaded)
        except (ProbeReplyError, KeyError, Empty, TimeoutError, asyncio.TimeoutError) as e:
            log.info("kernel %s did not say what it imported: %s", kernel_id, e)
        except Exception:  # noqa: BLE001 — one kernel's failure must not stop the others
            log.warning("checking kernel %s for stale imports failed", kernel_id, exc_info=True)
        finally:
            if self._pending.get(kernel_id) is asyncio.current_task():
                del self._pending[kernel_id]

    async def _apply(self, kernel_id: str, loaded: dict[str, LoadedDistribution]) -> None:
        notebook = await self._notebook(kernel_id)
        await IOLoop.current().run_in_executor(
            None, self.service.check_kernel, kernel_id, notebook, loaded
        )

    async def _ask(self, kernel_id: str) -> dict[str, LoadedDistribution]:
        client = self.kernel_manager.get_kernel(kernel_id).client()
        # the shell channel alone: the probe is silent, its answer is in the reply
        client.start_channels(iopub=False, stdin=False, hb=False, control=False)
        try:
            msg_id = client.execute(**probe_request())
            deadline = IOLoop.current().time() + self.queued_seconds
            while True:
                left = deadline - IOLoop.current().time()
                reply = await client.get_shell_msg(timeout=max(left, 0.001))
                if reply["parent_header"].get("msg_id") == msg_id:
                    return parse_probe_reply(reply["content"])
        finally:
            client.stop_channels()

    async def _notebook(self, kernel_id: str) -> str | None:
        for session in await self.session_manager.list_sessions():
            if (session.get("kernel") or {}).get("id") == kernel_id:
                path = session.get("path")
                return str(path) if path else None
        return None
