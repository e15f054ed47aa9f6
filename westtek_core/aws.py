"""The suite's boto3 clients: one factory, one cached client per service and settings.

Like kubespawner's ``shared_client``: making a client costs 0.1-0.3 s of CPU (botocore
loads the service's model) and a client is thread-safe once made, so every part of
westtek_core that talks to AWS (the S3 store backend, KMS store keys, the Bedrock knowledge
base and agent provider, the SNS sink) asks :func:`aws_client` instead of boto3.

:func:`aws_client` takes the arguments of boto3's ``client``; whatever a caller leaves unset
(region, endpoint, credentials) boto3 still takes from the AWS environment, exactly as a
plain ``boto3.client`` call does (``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL_<SERVICE>``/``AWS_ENDPOINT_URL``, the config and credentials files).

A client is cached per (service, region, endpoint, botocore ``Config``) and per AWS
environment: when any ``AWS_*`` variable has changed since the last call (a test pointing
at another moto server, other credentials, another config file), the cache starts over
with a fresh session, so a client never outlives the environment it was made from.
Clients stay open while cached: one owner's ``close()`` only empties the shared client's
connection pool, which botocore refills on the next call.

:func:`observe_calls` lets a caller see every AWS call the suite's clients make, with its
parameters, before it is sent: what an IAM review needs (``tests/e2e/test_aws_contract.py``
records each role's calls with it and checks them against the stack's policies).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.config import Config

# Clients kept per environment; the least recently used goes first (the Bedrock provider
# asks with a new read timeout per call, which would otherwise grow the cache without end).
MAX_CLIENTS = 32

_lock = threading.Lock()
_environment: str | None = None
_session: Any = None
_clients: OrderedDict[tuple[str, str | None, str | None, str], Any] = OrderedDict()

CallObserver = Callable[[str, str, Mapping[str, Any]], None]
"""``observer(service, operation, params)``: ``("s3", "PutObject", {"Bucket": ...})``."""
_observers: list[CallObserver] = []


def aws_client(
    service_name: str,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> Any:
    """The process's boto3 client for ``service_name`` with these settings (made once).

    The arguments are boto3's ``Session.client`` arguments, passed through unchanged.
    Making a client is not thread-safe in botocore, hence the lock.
    """
    global _environment, _session
    key = (service_name, region_name, endpoint_url, _config_key(config))
    environment = _environment_key()
    with _lock:
        if environment != _environment:
            _clients.clear()
            _session, _environment = None, environment
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
        if _session is None:
            import boto3  # only the parts of the suite that talk to AWS need it

            _session = boto3.session.Session()
        client = _session.client(
            service_name, region_name=region_name, endpoint_url=endpoint_url, config=config
        )
        if _observers:
            client.meta.events.register("before-parameter-build", _notify_observers)
        _clients[key] = client
        while len(_clients) > MAX_CLIENTS:
            _clients.popitem(last=False)
        return client


def observe_calls(observer: CallObserver) -> Callable[[], None]:
    """Call ``observer`` before each AWS call of the clients made from now on.

    Returns the function that stops observing. Cached clients are dropped so every later
    call goes through a client that reports it.
    """
    with _lock:
        _observers.append(observer)
    forget_clients()

    def stop() -> None:
        with _lock:
            if observer in _observers:
                _observers.remove(observer)
        forget_clients()

    return stop


def _notify_observers(params: Mapping[str, Any], model: Any, **_: Any) -> None:
    service = str(model.service_model.service_name)
    for observer in list(_observers):
        observer(service, str(model.name), params)


def forget_clients() -> None:
    """Drop every cached client (tests that swap credentials without changing ``AWS_*``)."""
    global _environment, _session
    with _lock:
        _clients.clear()
        _session, _environment = None, None


def _environment_key() -> str:
    """A digest of every ``AWS_*`` environment variable: what boto3 reads from outside."""
    items = sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def _config_key(config: Config | None) -> str:
    """A botocore ``Config``'s options as a string (``Config`` has no value equality)."""
    if config is None:
        return ""
    return json.dumps(vars(config), sort_keys=True, default=repr)
