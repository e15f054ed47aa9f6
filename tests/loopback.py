"""The tests' isolation: nothing but loopback may be dialled, and AWS is a dummy account."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest


def allow_only_loopback(monkeypatch: pytest.MonkeyPatch, who: str) -> None:
    """Make every IPv4/IPv6 connect to a non-loopback address fail the test, naming ``who``."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
                raise AssertionError(f"{who} dialled non-loopback address {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


def use_dummy_aws(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str | None = None
) -> None:
    """Dummy credentials, no profile, config file or IMDS; AWS calls go to ``endpoint``.

    Without ``endpoint``, no endpoint comes from the environment either.
    """
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
