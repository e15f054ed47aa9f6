"""Background jobs: long operations (snapshot, verify, restore, rollback) with progress.

A web server must stay responsive while a snapshot runs for a minute, so each operation
runs in a worker thread and is reported as a pollable job. Jobs that write to the store
run one at a time, in submission order; their progress is whatever the operation's
``Progress`` callback last said. A job whose data must first come back from archive storage
(a ``retry_on`` error) gives the worker up, shows why as its progress message, and runs
again after ``retry_seconds``, until it can finish.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from westtek_core.snapshot import Progress

JobWork = Callable[[Callable[[Progress], None]], dict[str, Any]]
"""The operation: given a progress callback, does the work and returns its JSON result."""


@dataclass
class Job:
    """One background operation and how far it has got."""

    id: str
    kind: str
    description: str
    state: str = "queued"  # queued → running → succeeded | failed
    progress: Progress = field(default_factory=lambda: Progress(0, 0, 0, 0))
    created: float = field(default_factory=time.time)
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    # between two runs, until a ``retry_on`` condition passes (the progress message says which)
    waiting: bool = False

    def to_json(self) -> dict[str, Any]:
        """The wire form (``Job`` in the server extension's models)."""
        done = self.state == "succeeded"
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "description": self.description,
            "progress": {
                "percent": 100.0 if done else round(self.progress.percent, 1),
                "files_done": self.progress.files_done,
                "files_total": self.progress.files_total,
                "bytes_done": self.progress.bytes_done,
                "bytes_total": self.progress.bytes_total,
                "message": self.progress.message or None,
            },
            "created": self.created,
            "finished": self.finished,
            "result": self.result,
            "error": self.error,
        }


class JobRunner:
    """Run jobs one at a time in a worker thread and keep the latest ``keep`` of them."""

    def __init__(
        self,
        keep: int = 100,
        expected_errors: tuple[type[BaseException], ...] = (Exception,),
        on_finished: Callable[[Job], None] | None = None,
        retry_on: tuple[type[BaseException], ...] = (),
        retry_seconds: float = 900.0,
    ) -> None:
        self.keep = keep
        # errors that are the user's to fix: their message is the job's error, no traceback
        self.expected_errors = expected_errors
        self.on_finished = on_finished
        # errors meaning "not yet" (ArchiveWait): the job runs again after retry_seconds
        self.retry_on = retry_on
        self.retry_seconds = retry_seconds
        self._retries: set[threading.Timer] = set()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="westtek-job")

    def submit(self, kind: str, description: str, work: JobWork) -> Job:
        """Queue ``work``; returns its job at once."""
        job = Job(id=uuid.uuid4().hex[:16], kind=kind, description=description)
        with self._lock:
            self._jobs[job.id] = job
            for old in sorted(self._jobs.values(), key=lambda j: j.created)[: -self.keep]:
                if old.finished is not None:
                    del self._jobs[old.id]
        self._pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: JobWork) -> None:
        job.state, job.waiting = "running", False

        def progress(state: Progress) -> None:
            job.progress = state

        try:
            job.result = work(progress)
            job.state = "succeeded"
        except self.retry_on as e:
            job.progress = replace(job.progress, message=str(e))
            job.waiting = True
            self._retry_later(job, work)
            return
        except self.expected_errors as e:
            job.error = str(e) or type(e).__name__
            job.state = "failed"
        except Exception as e:  # noqa: BLE001 — a job must always end; the error is reported
            job.error = f"{type(e).__name__}: {e}"
            job.state = "failed"
        job.finished = time.time()
        if self.on_finished:
            self.on_finished(job)

    def _retry_later(self, job: Job, work: JobWork) -> None:
        """Queue the job again in ``retry_seconds``; the worker serves other jobs meanwhile."""

        def again() -> None:
            with self._lock:
                self._retries.discard(timer)
            try:
                self._pool.submit(self._run, job, work)
            except RuntimeError:  # shut down meanwhile
                pass

        timer = threading.Timer(self.retry_seconds, again)
        timer.daemon = True
        with self._lock:
            self._retries.add(timer)
        timer.start()

    def get(self, job_id: str) -> Job | None:
        """The job with this id, if it is still kept."""
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """Every kept job, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: -j.created)

    def wait(self, job_id: str, timeout: float) -> Job | None:
        """Block until a job ends or ``timeout`` passes (for tests and the CLI)."""
        deadline = time.monotonic() + timeout
        job = self.get(job_id)
        while job and job.finished is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return job

    def shutdown(self) -> None:
        """Stop taking jobs; the running one is left to finish, waiting ones are dropped."""
        with self._lock:
            retries, self._retries = self._retries, set()
        for timer in retries:
            timer.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
