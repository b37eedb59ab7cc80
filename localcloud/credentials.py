"""Access keys and STS tokens that the local services accept."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None


class CredentialStore:
    """Keys shared by every local service, like one Alibaba Cloud account's RAM keys.

    A key registered with a security token is an STS credential: requests signed with it
    must also carry that token.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, Credential] = {}

    def add(
        self, access_key_id: str, access_key_secret: str, security_token: str | None = None
    ) -> Credential:
        cred = Credential(access_key_id, access_key_secret, security_token)
        with self._lock:
            self._keys[access_key_id] = cred
        return cred

    def get(self, access_key_id: str) -> Credential | None:
        with self._lock:
            return self._keys.get(access_key_id)

    def remove(self, access_key_id: str) -> None:
        with self._lock:
            self._keys.pop(access_key_id, None)


DEFAULT_ACCESS_KEY_ID = "LTAI-local-test"
DEFAULT_ACCESS_KEY_SECRET = "local-secret"


def default_store() -> CredentialStore:
    """A store holding the default local key, as used by `python -m localcloud up`."""
    store = CredentialStore()
    store.add(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)
    return store
