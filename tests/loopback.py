"""The tests' network guard: nothing but loopback may be dialled (a fake AWS address above all)."""

from __future__ import annotations

import ipaddress
import socket
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
