"""Fixtures the integration tests share: a local OSS served on 127.0.0.1, and no ECS
metadata service for any SDK the tests drive."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from localcloud.credentials import CredentialStore
from localcloud.oss import LocalOss
from localcloud.server import LocalServer

#: ``start_oss(name, keys=..., **LocalOss options) -> (LocalOss, endpoint URL)``
StartOss = Callable[..., tuple[LocalOss, str]]


@pytest.fixture(scope="module", autouse=True)
def _no_metadata_service() -> Iterator[None]:
    """An SDK that finds no credentials must fail, never ask 100.100.100.200."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
        yield


def credential_store(keys: Iterable[tuple[str, ...]]) -> CredentialStore:
    """A store holding each ``(access key id, secret[, security token])``."""
    store = CredentialStore()
    for key in keys:
        store.add(*key)
    return store


@pytest.fixture(scope="module")
def start_oss(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartOss]:
    """Start local OSS instances for the module, each on its own 127.0.0.1 port.

    ``keys`` (``(ak, secret[, token])`` tuples) replace the default credentials; other
    keyword arguments go to :class:`LocalOss`. The server's URL becomes the instance's
    ``base_url``. Every instance is stopped, then closed, when the module ends.
    """
    with ExitStack() as stack:

        def start(
            name: str = "oss", *, keys: Iterable[tuple[str, ...]] | None = None, **options: Any
        ) -> tuple[LocalOss, str]:
            store = credential_store(keys) if keys is not None else None
            local = LocalOss(tmp_path_factory.mktemp(name), store, **options)
            stack.callback(local.close)
            server = stack.enter_context(LocalServer(local, name=name))
            local.base_url = server.url
            return local, server.url

        yield start


@pytest.fixture(scope="module")
def served(start_oss: StartOss) -> tuple[LocalOss, str]:
    """The module's local OSS with default credentials; a module overrides this fixture
    for other keys or options, and ``oss`` / ``endpoint`` follow."""
    return start_oss()


@pytest.fixture(scope="module")
def oss(served: tuple[LocalOss, str]) -> LocalOss:
    return served[0]


@pytest.fixture(scope="module")
def endpoint(served: tuple[LocalOss, str]) -> str:
    """The module's local OSS URL (``http://127.0.0.1:<port>``)."""
    return served[1]
