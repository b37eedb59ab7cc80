"""Unit tests run on in-memory fakes: any attempt to open a socket fails the test."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


class SocketUsedError(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise SocketUsedError(
            "unit tests must not open sockets; use the fakes in tests/unit/fakes.py"
        )

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket.socket, "bind", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield
