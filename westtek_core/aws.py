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
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
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
        _clients[key] = client
        while len(_clients) > MAX_CLIENTS:
            _clients.popitem(last=False)
        return client


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
