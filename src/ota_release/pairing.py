"""Pair a firmware file with its sidecar, whichever of the two arrived last.

Naming rule (one rule for the pairing, the function's screening and the CLI):

* A key is a sidecar when it ends **exactly** (case-sensitive, as OSS keys are) in one of
  the configured sidecar suffixes; the longest matching suffix wins. Its firmware is the
  key minus that suffix. :func:`sidecar_suffix_of` is the one function that decides it.
* Any other key is a firmware file, whose sidecar is ``key + suffix`` for one suffix.
* A multi-file release is a folder plus a sidecar named after it: the sidecar
  ``p/cam-2.0.0.ota.json`` with a ``files`` list describes ``p/cam-2.0.0/<name>``. A file
  with no sidecar of its own looks for its folder's (:func:`folder_sidecar_candidates`);
  whether a sidecar is a multi-file one is learnt by reading it
  (:mod:`ota_release.pipeline.files`).
* Keys that can never be half of a release are refused (:func:`naming_problem`): a
  sidecar naming no file (``dir/.ota.json``), a sidecar whose firmware is itself named
  like a sidecar (``x.ota.json.ota.json``), a key ending in a suffix in another case
  (``x.OTA.JSON``: HEAD is case-sensitive, so the other half could never find it), and a
  firmware whose every sidecar name would be longer than OSS's key limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ota_release.events import OSS_MAX_KEY_BYTES, key_bytes
from ota_release.ports import ObjectInfo

__all__ = [
    "OSS_MAX_KEY_BYTES",
    "Pairing",
    "Role",
    "find_pair",
    "folder_sidecar_candidates",
    "naming_problem",
    "role_of",
    "sidecar_candidates",
    "sidecar_suffix_of",
]


def sidecar_suffix_of(key: str, suffixes: Sequence[str]) -> str | None:
    """The sidecar suffix ``key`` ends with (exact, case-sensitive, longest first), or None.

    The one place a name is judged a sidecar: the pairing, the function and the CLI call it.
    """
    for suffix in sorted(suffixes, key=len, reverse=True):
        if key.endswith(suffix):
            return suffix
    return None


def _miscased_suffix_of(key: str, suffixes: Sequence[str]) -> str | None:
    """A suffix ``key`` ends with in another letter case only (``.OTA.JSON``), or None."""
    folded = key.casefold()
    for suffix in sorted(suffixes, key=len, reverse=True):
        if folded.endswith(suffix.casefold()) and not key.endswith(suffix):
            return suffix
    return None


@dataclass(frozen=True)
class Role:
    """What an uploaded key is: a sidecar (with its firmware's key) or a firmware file."""

    is_sidecar: bool
    firmware_key: str
    suffix: str | None = None


def role_of(key: str, suffixes: Sequence[str]) -> Role:
    """A key ending in a sidecar suffix is a sidecar; anything else is a firmware file."""
    suffix = sidecar_suffix_of(key, suffixes)
    if suffix is not None:
        return Role(True, key[: -len(suffix)], suffix)
    return Role(False, key)


def sidecar_candidates(firmware_key: str, suffixes: Sequence[str]) -> tuple[str, ...]:
    """The sidecar names ``firmware_key`` may have: one per suffix, within OSS's key limit."""
    names = (firmware_key + s for s in suffixes)
    return tuple(n for n in names if key_bytes(n) <= OSS_MAX_KEY_BYTES)


def folder_sidecar_candidates(key: str, suffixes: Sequence[str]) -> tuple[str, ...]:
    """The sidecar names of the release folder ``key`` is in (``dirname(key)`` + suffix).

    A key at the top of the bucket is in no release folder.
    """
    folder, _, _ = key.rpartition("/")
    if not folder:
        return ()
    return sidecar_candidates(folder, suffixes)


def _problem(rule: str, value: Any) -> dict[str, Any]:
    return {"field": "key", "rule": rule, "value": value}


def naming_problem(key: str, suffixes: Sequence[str]) -> dict[str, Any] | None:
    """Why ``key`` can never be half of a release (an error dict), or None if it can."""
    role = role_of(key, suffixes)
    if role.is_sidecar:
        fw = role.firmware_key
        if not fw or fw.endswith("/"):
            return _problem("a sidecar is named <firmware file name><suffix>", key)
        if sidecar_suffix_of(fw, suffixes) or _miscased_suffix_of(fw, suffixes):
            return _problem(
                "a firmware file must not be named like a sidecar, so this sidecar's "
                f"firmware {fw!r} can never be released",
                key,
            )
        return None
    miscased = _miscased_suffix_of(key, suffixes)
    if miscased is not None:
        return _problem(
            f"sidecar suffixes are matched exactly, case-sensitive: rename it to end in "
            f"{miscased!r} (configured: {', '.join(suffixes)})",
            key,
        )
    if not sidecar_candidates(key, suffixes):
        shortest = min(len(s.encode("utf-8")) for s in suffixes)
        return _problem(
            f"must be at most {OSS_MAX_KEY_BYTES - shortest} bytes, so that its sidecar's "
            f"name (key + suffix) fits OSS's {OSS_MAX_KEY_BYTES}-byte key limit",
            f"{key_bytes(key)} bytes",
        )
    return None


@dataclass(frozen=True)
class Pairing:
    """The outcome of looking for both halves of a release."""

    firmware: ObjectInfo | None
    sidecar: ObjectInfo | None
    #: keys looked for and not found (for the ``waiting`` notification)
    missing: tuple[str, ...] = ()
    #: more than one sidecar for the same firmware file
    ambiguous: tuple[str, ...] = ()
    #: why the trigger can never be paired (:func:`naming_problem`); nothing was looked up
    refusal: dict[str, Any] | None = None
    #: the release folder (the sidecar's stem) of a multi-file release, or of a folder
    #: sidecar still to be read to learn whether it is one
    folder: str | None = None
    #: sidecars found for the trigger's folder (a file event with no sidecar of its own)
    folder_sidecars: tuple[ObjectInfo, ...] = ()
    #: a multi-file release's files found so far, by name (``folder``/name)
    files: tuple[tuple[str, ObjectInfo], ...] = ()
    #: a multi-file release: its sidecar was read and lists ``files`` (see ``missing``)
    multi: bool = False

    @property
    def complete(self) -> bool:
        whole = self.firmware is not None or (self.multi and not self.missing)
        return whole and self.sidecar is not None and not self.ambiguous and self.refusal is None


def find_pair(
    head: Callable[[str], ObjectInfo | None],
    trigger: ObjectInfo,
    suffixes: Sequence[str],
) -> Pairing:
    """Look up the partner of ``trigger`` with ``head`` (a HEAD on the same bucket).

    Only names within OSS's key limit are looked up: a longer one cannot exist, and OSS
    answers its HEAD with HTTP 400.
    """
    role = role_of(trigger.key, suffixes)
    refusal = naming_problem(trigger.key, suffixes)
    if refusal is not None:
        if role.is_sidecar:
            return Pairing(None, trigger, refusal=refusal)
        return Pairing(trigger, None, refusal=refusal)
    if role.is_sidecar:
        firmware = head(role.firmware_key)
        if firmware is None:
            # Perhaps a multi-file release's sidecar, whose stem is a folder: the pipeline
            # reads it to know.
            key = role.firmware_key
            return Pairing(None, trigger, missing=(key,), folder=key)
        # Another sidecar for the same file makes the release ambiguous whichever half
        # (or which sidecar) triggered; report it exactly as the firmware's event would.
        siblings = [
            trigger if name == trigger.key else head(name)
            for name in sidecar_candidates(role.firmware_key, suffixes)
        ]
        present = [info for info in siblings if info is not None]
        if len(present) > 1:
            return Pairing(firmware, present[0], ambiguous=tuple(i.key for i in present))
        return Pairing(firmware, trigger)
    candidates = sidecar_candidates(trigger.key, suffixes)
    found = [info for info in map(head, candidates) if info is not None]
    if not found:
        # No sidecar of its own: perhaps a file of a multi-file release in its folder.
        folder_sidecars = tuple(
            info
            for info in map(head, folder_sidecar_candidates(trigger.key, suffixes))
            if info is not None
        )
        folder = trigger.key.rpartition("/")[0] if folder_sidecars else None
        return Pairing(
            trigger, None, missing=candidates, folder=folder, folder_sidecars=folder_sidecars
        )
    if len(found) > 1:
        return Pairing(trigger, found[0], ambiguous=tuple(i.key for i in found))
    return Pairing(trigger, found[0])
