"""Batched task status: one DescribeTasks for up to 100 servers, shared by every spawner.

JupyterHub polls each server on its own timer; with one ``DescribeTasks`` per poll, 500
users would cost 500 calls a cycle and hit ECS's API rate limits. A :class:`TaskWatcher`
(one per cluster and event loop) keeps the last answer for every task it was asked about:

* an answer younger than the caller's ``max_age`` is served from the cache, and a batch
  already on its way that covers the task answers it;
* otherwise the caller joins the next batch, which waits ``batch_window`` seconds for other
  callers. A batch asked for by a poll (``sweep=True``) describes *every* watched task, 100
  a call (the API's limit), so all answers age together and the next sweep is due a whole
  ``max_age`` later: ``ceil(servers / 100)`` calls a poll cycle, however the servers' poll
  timers are spread. A batch asked for by spawns waiting for their task (short
  ``max_age``) describes those tasks and fills each call's spare places with the watched
  tasks whose answers are oldest.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any

from westtek_spawner.aws import aws_call

DESCRIBE_LIMIT = 100  # tasks per DescribeTasks call, the API's maximum


class TaskWatcher:
    """The last known state of the tasks of one ECS cluster, refreshed in batches."""

    def __init__(
        self,
        client: Any,
        cluster: str,
        batch_window: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.batch_window = batch_window
        self.clock = clock
        self.watched: set[str] = set()
        self._tasks: dict[str, dict[str, Any] | None] = {}  # None: ECS does not know it
        self._seen: dict[str, float] = {}
        self._wanted: set[str] = set()
        self._sweep = False
        self._next: asyncio.Future[set[str]] | None = None
        # Batches on their way to ECS, with the tasks each will answer for.
        self._inflight: list[tuple[frozenset[str], asyncio.Future[set[str]]]] = []
        #: DescribeTasks calls made (for tests and the benchmark)
        self.calls = 0

    def watch(self, task_arn: str) -> None:
        """Keep ``task_arn`` in the batches (a running server)."""
        self.watched.add(task_arn)

    def unwatch(self, task_arn: str) -> None:
        """Forget ``task_arn`` (its server stopped)."""
        self.watched.discard(task_arn)
        self._tasks.pop(task_arn, None)
        self._seen.pop(task_arn, None)

    def remember(self, task: dict[str, Any]) -> None:
        """Record a task ECS just returned from another call (``run_task``)."""
        self._tasks[task["taskArn"]] = task
        self._seen[task["taskArn"]] = self.clock()

    async def describe(
        self, task_arn: str, max_age: float, sweep: bool = False
    ) -> dict[str, Any] | None:
        """The task as ECS last described it, at most ``max_age`` seconds old.

        ``sweep``: if a call is needed, describe every watched task (what polls ask for).
        None when ECS does not know the task (it stopped long ago, or never ran here).
        """
        self.watch(task_arn)
        while True:
            seen = self._seen.get(task_arn)
            if seen is not None and self.clock() - seen <= max_age:
                return self._tasks.get(task_arn)
            # A batch already on its way that covers this task (as a rider, say) answers it.
            flying = next((f for arns, f in self._inflight if task_arn in arns), None)
            if flying is not None:
                if task_arn in await asyncio.shield(flying):
                    return self._tasks.get(task_arn)
                continue
            self._wanted.add(task_arn)
            self._sweep = self._sweep or sweep
            if self._next is None:
                self._next = asyncio.ensure_future(self._refresh())
            refreshed = await asyncio.shield(self._next)
            if task_arn in refreshed:  # however long the call took, this is the latest
                return self._tasks.get(task_arn)

    async def _refresh(self) -> set[str]:
        await asyncio.sleep(self.batch_window)  # let concurrent callers join this batch
        self._next = None  # callers from now on start the next batch
        wanted, self._wanted = self._wanted, set()
        sweep, self._sweep = self._sweep, False
        started = self.clock()
        if sweep:
            riders = sorted(self.watched - wanted)
        else:
            calls = -(-len(wanted) // DESCRIBE_LIMIT)
            spare = calls * DESCRIBE_LIMIT - len(wanted)
            oldest = sorted(self.watched - wanted, key=lambda arn: self._seen.get(arn, 0.0))
            riders = oldest[:spare]
        arns = sorted(wanted) + riders
        chunks = [arns[i : i + DESCRIBE_LIMIT] for i in range(0, len(arns), DESCRIBE_LIMIT)]
        me = asyncio.current_task()
        assert me is not None  # _refresh runs as a task (ensure_future in describe)
        entry: tuple[frozenset[str], asyncio.Future[set[str]]] = (frozenset(arns), me)
        self._inflight.append(entry)
        try:
            answers = await asyncio.gather(*(self._describe(chunk) for chunk in chunks))
        finally:
            self._inflight.remove(entry)
        for chunk, tasks in zip(chunks, answers, strict=True):
            by_arn = {task["taskArn"]: task for task in tasks}
            for arn in chunk:
                # not in the answer (ECS lists it under failures as MISSING): gone
                self._tasks[arn] = by_arn.get(arn)
                self._seen[arn] = started
        return set(arns)

    async def _describe(self, chunk: list[str]) -> list[dict[str, Any]]:
        self.calls += 1
        answer = await aws_call(self.client, "describe_tasks", cluster=self.cluster, tasks=chunk)
        return list(answer.get("tasks", []))


# One watcher per event loop, client and cluster: futures belong to the loop they were
# made on, and a test (or a hub) may run more than one loop in a process.
_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[int, str], TaskWatcher]]
_watchers = weakref.WeakKeyDictionary()


def task_watcher(client: Any, cluster: str) -> TaskWatcher:
    """The watcher of ``cluster`` for the running event loop (created on first use)."""
    per_loop = _watchers.setdefault(asyncio.get_running_loop(), {})
    key = (id(client), cluster)
    watcher = per_loop.get(key)
    if watcher is None:
        watcher = per_loop[key] = TaskWatcher(client, cluster)
    return watcher
