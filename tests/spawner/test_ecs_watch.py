"""The batched task watcher, against an ECS stand-in that counts its DescribeTasks calls."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from westtek_spawner.backends.ecs_watch import TaskWatcher


class CountingEcs:
    """describe_tasks as ECS answers it (100 at most), slowly, counting the calls."""

    def __init__(self, delay: float = 0.05) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay
        self.stopped: set[str] = set()
        self.meta = SimpleNamespace(
            service_model=SimpleNamespace(service_name="ecs"),
            method_to_api_mapping={"describe_tasks": "DescribeTasks"},
        )

    def describe_tasks(self, cluster: str, tasks: list[str]) -> dict:
        assert len(tasks) <= 100, "ECS refuses more than 100 tasks a call"
        self.calls.append(list(tasks))
        time.sleep(self.delay)
        status = {arn: "STOPPED" if arn in self.stopped else "RUNNING" for arn in tasks}
        return {
            "tasks": [{"taskArn": arn, "lastStatus": s} for arn, s in status.items()],
            "failures": [],
        }


def arns(count: int) -> list[str]:
    return [f"arn:aws:ecs:us-east-1:1:task/westtek/{i:04d}" for i in range(count)]


async def test_concurrent_polls_share_batches_of_a_hundred():
    ecs = CountingEcs()
    watcher = TaskWatcher(ecs, "westtek")
    tasks = arns(250)
    answers = await asyncio.gather(*(watcher.describe(a, max_age=10) for a in tasks))
    assert [a["taskArn"] for a in answers] == tasks
    assert sorted(len(c) for c in ecs.calls) == [50, 100, 100]
    # within max_age: from the cache
    await asyncio.gather(*(watcher.describe(a, max_age=10) for a in tasks))
    assert len(ecs.calls) == 3 and watcher.calls == 3


async def test_a_poll_during_a_batch_that_covers_it_waits_for_that_batch():
    # Given 100 watched tasks and a refresh on its way for one of them (the others riding),
    ecs = CountingEcs(delay=0.3)
    watcher = TaskWatcher(ecs, "westtek")
    tasks = arns(100)
    await asyncio.gather(*(watcher.describe(a, max_age=10) for a in tasks))
    first = asyncio.ensure_future(watcher.describe(tasks[0], max_age=0))
    await asyncio.sleep(0.1)  # the batch is at ECS now
    # when another task's poll finds its answer too old,
    second = await watcher.describe(tasks[1], max_age=0)
    await first
    # then it is answered by the batch in flight, not by a call of its own.
    assert second["taskArn"] == tasks[1]
    assert len(ecs.calls) == 2 and len(ecs.calls[1]) == 100


async def test_a_task_ecs_no_longer_knows_is_none_and_stopped_ones_are_seen():
    ecs = CountingEcs()
    watcher = TaskWatcher(ecs, "westtek")
    (known,) = arns(1)
    ecs.stopped.add(known)
    assert (await watcher.describe(known, max_age=0))["lastStatus"] == "STOPPED"

    def forgets(cluster: str, tasks: list[str]) -> dict:
        return {"tasks": [], "failures": [{"arn": tasks[0], "reason": "MISSING"}]}

    ecs.describe_tasks = forgets
    assert await watcher.describe(known, max_age=0) is None
    watcher.unwatch(known)
    assert known not in watcher.watched


async def test_polls_cost_one_call_per_hundred_servers_a_cycle_however_timers_are_spread():
    # Given 500 servers whose poll timers run at random phases with JupyterHub's 10% jitter,
    import random

    rng = random.Random(7)
    now = [0.0]
    ecs = CountingEcs(delay=0)
    watcher = TaskWatcher(ecs, "westtek", batch_window=0, clock=lambda: now[0])
    period, cycles = 30.0, 6
    polls = []
    for arn in arns(500):
        watcher.watch(arn)  # all running, as after the waves or a hub restart
        t = rng.uniform(0, period)
        while t < period * (cycles + 1):
            polls.append((t, arn))
            t += period * rng.uniform(0.9, 1.1)
    # when each is polled on its timer, with answers allowed to be a poll interval old,
    for t, arn in sorted(polls):
        now[0] = t
        await watcher.describe(arn, max_age=period, sweep=True)
    # then each cycle costs one sweep: 5 calls of 100 tasks.
    assert all(len(c) == 100 for c in ecs.calls)
    assert len(ecs.calls) <= 5 * (cycles + 1), len(ecs.calls)


async def test_a_spawn_waiting_for_its_task_does_not_sweep():
    ecs = CountingEcs()
    watcher = TaskWatcher(ecs, "westtek")
    tasks = arns(250)
    for arn in tasks:
        watcher.watch(arn)
    await watcher.describe(tasks[0], max_age=1.0)  # a start-time check: one call of 100
    assert [len(c) for c in ecs.calls] == [100]
    await watcher.describe(tasks[0], max_age=0, sweep=True)  # a poll: everything
    assert [len(c) for c in ecs.calls[1:]] == [100, 100, 50]
