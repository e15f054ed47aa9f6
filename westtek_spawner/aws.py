"""AWS for the spawner: the boto3 clients, and the one helper every blocking call goes through.

boto3 is synchronous, so :func:`aws_call` runs each call on a shared thread pool and turns
botocore's errors into a :class:`~westtek_spawner.errors.SpawnError` whose message names the
operation and AWS's own reason. Throttling is botocore's job: clients use its ``standard``
retry mode (exponential backoff with jitter, ``max_attempts`` tries), so a throttled call
backs off and retries before it ever reaches us; only one that stays throttled fails.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from westtek_core.aws import aws_client as shared_client
from westtek_spawner.errors import SpawnError

# Error codes botocore's standard retry mode treats as throttling.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "LimitExceededException",
    }
)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
EXECUTOR_THREADS = 16


def aws_client(
    service: str, region: str = "", endpoint_url: str = "", max_attempts: int = 8
) -> Any:
    """The process's boto3 client for ``service`` with these settings (created once).

    Made by the suite's one client factory (:func:`westtek_core.aws.aws_client`) with
    botocore's standard retries and a connection pool as large as the executor. An empty
    ``region`` or ``endpoint_url`` leaves boto3 to its usual sources (``AWS_REGION``,
    ``AWS_ENDPOINT_URL``, the config file).
    """
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=EXECUTOR_THREADS,
    )
    return shared_client(service, region or None, endpoint_url or None, config)


async def warm_clients(
    services: tuple[str, ...], region: str = "", endpoint_url: str = "", max_attempts: int = 8
) -> None:
    """Make these clients on the executor, not on the hub's event loop.

    Making one takes 0.1-0.3 s of CPU (botocore loads the service's model): long enough to
    stall every request the hub is serving. Asking again for a made one costs nothing.
    """
    loop = asyncio.get_running_loop()
    for service in services:
        await loop.run_in_executor(
            executor(), aws_client, service, region, endpoint_url, max_attempts
        )


def executor() -> ThreadPoolExecutor:
    """The one thread pool every blocking AWS call runs on."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(EXECUTOR_THREADS, thread_name_prefix="westtek-aws")
    return _executor


def describe_client_error(operation: str, error: ClientError) -> str:
    """One line for the user: the operation and AWS's code and message."""
    info = error.response.get("Error", {})
    code = info.get("Code", "Error")
    message = info.get("Message") or str(error)
    attempts = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    if code in THROTTLING_CODES:
        return (
            f"AWS kept throttling {operation} after {attempts + 1} attempts ({code}: {message}); "
            "the hub is making too many AWS calls right now: try again in a minute"
        )
    return f"AWS {operation} failed: {code}: {message}"


async def aws_call(client: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
    """Call ``client.<operation>(**kwargs)`` on the executor; errors become SpawnError.

    ``operation`` is the boto3 method name (``run_task``). The error keeps the original
    ``ClientError`` as its cause, and its code as ``aws_code`` for callers that branch on it.
    """
    method = getattr(client, operation)
    loop = asyncio.get_running_loop()
    try:
        result: dict[str, Any] = await loop.run_in_executor(
            executor(), functools.partial(method, **kwargs)
        )
    except ClientError as e:
        error = SpawnError(describe_client_error(_api_name(client, operation), e))
        error.aws_code = e.response.get("Error", {}).get("Code", "")  # type: ignore[attr-defined]
        raise error from e
    except BotoCoreError as e:
        raise SpawnError(f"AWS {_api_name(client, operation)} failed: {e}") from e
    return result


def error_code(error: BaseException) -> str:
    """The AWS error code a SpawnError from :func:`aws_call` carries ('' otherwise)."""
    return str(getattr(error, "aws_code", ""))


def _api_name(client: Any, operation: str) -> str:
    """``ecs.RunTask`` style: what AWS's documentation and CloudTrail call the operation."""
    service = client.meta.service_model.service_name
    name = client.meta.method_to_api_mapping.get(operation, operation)
    return f"{service}.{name}"
