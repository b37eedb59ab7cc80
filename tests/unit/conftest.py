"""Unit tests run on in-memory fakes: any attempt to open a socket fails the test."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest

from ota_release import function


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


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """The handler's settings cache empty before and after the test (it reads env afresh)."""
    function.reset_settings_cache()
    yield
    function.reset_settings_cache()


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """Everything the powertools Logger prints (JSON lines), as the FC log would show it."""
    handler = function.logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    handler.setStream(previous)  # type: ignore[attr-defined]
