"""Pair a firmware file with its sidecar, whichever of the two arrived last."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ota_release.ports import ObjectInfo


@dataclass(frozen=True)
class Role:
    """What an uploaded key is: a sidecar (with its firmware's key) or a firmware file."""

    is_sidecar: bool
    firmware_key: str
    suffix: str | None = None


def role_of(key: str, suffixes: Sequence[str]) -> Role:
    """A key ending in a sidecar suffix is a sidecar; anything else is a firmware file.

    The longest matching suffix wins, so ``.ota.yaml`` is never mistaken for ``.yaml``.
    """
    for suffix in sorted(suffixes, key=len, reverse=True):
        if key.endswith(suffix):
            return Role(True, key[: -len(suffix)], suffix)
    return Role(False, key)


@dataclass(frozen=True)
class Pairing:
    """The outcome of looking for both halves of a release."""

    firmware: ObjectInfo | None
    sidecar: ObjectInfo | None
    #: keys looked for and not found (for the ``waiting`` notification)
    missing: tuple[str, ...] = ()
    #: more than one sidecar for the same firmware file
    ambiguous: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.firmware is not None and self.sidecar is not None and not self.ambiguous


def find_pair(
    head: Callable[[str], ObjectInfo | None],
    trigger: ObjectInfo,
    suffixes: Sequence[str],
) -> Pairing:
    """Look up the partner of ``trigger`` with ``head`` (a HEAD on the same bucket)."""
    role = role_of(trigger.key, suffixes)
    if role.is_sidecar:
        firmware = head(role.firmware_key) if role.firmware_key else None
        if firmware is None:
            return Pairing(None, trigger, missing=(role.firmware_key,))
        # Another sidecar for the same file makes the release ambiguous whichever half
        # (or which sidecar) triggered; report it exactly as the firmware's event would.
        siblings = [
            trigger if suffix == role.suffix else head(role.firmware_key + suffix)
            for suffix in suffixes
        ]
        present = [info for info in siblings if info is not None]
        if len(present) > 1:
            return Pairing(firmware, present[0], ambiguous=tuple(i.key for i in present))
        return Pairing(firmware, trigger)
    found = []
    for suffix in suffixes:
        info = head(trigger.key + suffix)
        if info is not None:
            found.append(info)
    if not found:
        return Pairing(trigger, None, missing=tuple(trigger.key + s for s in suffixes))
    if len(found) > 1:
        return Pairing(trigger, found[0], ambiguous=tuple(i.key for i in found))
    return Pairing(trigger, found[0])
