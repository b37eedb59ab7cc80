"""Local checks: the function's own sidecar rules plus the firmware file's size and digest.

``validate``, ``init`` and ``upload`` all go through :func:`check_release`, so a sidecar
that passes here is judged by exactly the code the function runs (``parse_sidecar``), and
the digest is computed by the same streaming ``digest_stream``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ota_release.cli.common import UsageProblem, byte_progress
from ota_release.cli.shared import listed
from ota_release.defaults import Defaults, effective_spec, resolve
from ota_release.digest import Digest, digest_stream
from ota_release.pairing import role_of
from ota_release.ports import ObjectTooLarge
from ota_release.rules import FIRMWARE_SIZE_MAX, Violation
from ota_release.settings import DEFAULT_SIDECAR_SUFFIXES
from ota_release.sidecar import FILES_KEY, MAX_SIDECAR_BYTES, ReleaseSpec


@dataclass
class ReleaseCheck:
    """What was found out about one sidecar (and its firmware file, when given)."""

    sidecar: Path
    firmware_key: str
    firmware: Path | None = None
    spec: ReleaseSpec | None = None
    digest: Digest | None = None
    errors: list[Violation] = field(default_factory=list)
    #: friendly key -> the file (sidecar or folder defaults, relative to the defaults
    #: root) or setting its effective value came from
    sources: dict[str, str] = field(default_factory=dict)
    #: True when a folder defaults file applies to this sidecar
    defaulted: bool = False
    #: a multi-file release's files checked in its folder, by name
    files: dict[str, Digest] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.spec is not None and not self.errors

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape of one result (see docs/cli.md)."""
        release = None
        if self.spec is not None:
            release = self.spec.model_dump(exclude_none=True)
        files = {}
        if self.files:
            files["files"] = [
                {"name": n, "size": d.size, "sign_method": d.sign_method, "sign": d.sign}
                for n, d in self.files.items()
            ]
        return files | {
            "sidecar": str(self.sidecar),
            "firmware": str(self.firmware) if self.firmware else None,
            "firmware_key": self.firmware_key,
            "valid": self.ok,
            "errors": [v.as_dict() for v in self.errors],
            "release": release,
            "sources": dict(sorted(self.sources.items())),
            "digest": (
                {
                    "size": self.digest.size,
                    "sign_method": self.digest.sign_method,
                    "sign": self.digest.sign,
                }
                if self.digest
                else None
            ),
        }


def sidecar_suffix(path: Path, suffixes: Sequence[str] = DEFAULT_SIDECAR_SUFFIXES) -> str | None:
    """The sidecar suffix the file name ends with, or None."""
    role = role_of(path.name, suffixes)
    return role.suffix if role.is_sidecar else None


def compute_digest(path: Path, sign_method: str) -> Digest:
    """Stream the file through the function's digest code, with a progress bar on a tty."""
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle, byte_progress(f"{sign_method} {path.name}", size) as progress:
        return digest_stream(
            handle, sign_method, on_chunk=lambda chunk: progress.advance(len(chunk))
        )


def read_sidecar(path: Path) -> bytes | Violation:
    """The sidecar's bytes, or the size violation; never reads more than the limit + 1."""
    try:
        size = path.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            return Violation(
                "sidecar", f"must be at most {MAX_SIDECAR_BYTES} bytes", f"{size} bytes"
            )
        with path.open("rb") as handle:
            return handle.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror or exc}") from exc


def local_defaults(sidecar: Path, root: Path | None = None) -> tuple[Defaults, str]:
    """The folder defaults for ``sidecar`` from the local folders, and its key below the root.

    The root stands for the watched prefix: ``root`` when given (the sidecar must be below
    it), else the current directory when the sidecar is below it, else the sidecar's own
    folder. The folders are read exactly as the function reads OSS
    (:func:`ota_release.defaults.resolve`): from the root down to the sidecar's folder.
    """
    path = sidecar.resolve()
    base = (root or Path.cwd()).resolve()
    if not path.is_relative_to(base):
        if root is not None:
            raise UsageProblem(f"{sidecar} is not below the defaults root {root}")
        base = path.parent
    key = path.relative_to(base).as_posix()

    def read(relative: str) -> bytes | None:
        candidate = base / relative
        if not candidate.is_file():
            return None
        if candidate.stat().st_size > MAX_SIDECAR_BYTES:
            raise ObjectTooLarge(relative, MAX_SIDECAR_BYTES)
        return candidate.read_bytes()

    return resolve(read, key), key


def check_release(
    sidecar: Path,
    firmware: Path | None = None,
    *,
    firmware_key: str | None = None,
    default_product_key: str | None = None,
    suffixes: Sequence[str] = DEFAULT_SIDECAR_SUFFIXES,
    defaults_root: Path | None = None,
) -> ReleaseCheck:
    """Validate a sidecar file; with ``firmware``, also its size and digest.

    The firmware key (which the derived FirmwareName comes from) is ``firmware_key`` when
    given, else the firmware file's name, else the sidecar's name minus its suffix. A
    sidecar checked without a firmware file must be named like one, or the function would
    take it for a firmware file.
    """
    suffix = sidecar_suffix(sidecar, suffixes)
    errors: list[Violation] = []
    if firmware_key is None:
        if firmware is not None:
            firmware_key = firmware.name
        elif suffix is not None:
            firmware_key = sidecar.name[: -len(suffix)]
        else:
            firmware_key = sidecar.stem
            errors.append(
                Violation(
                    "sidecar",
                    "file name must be the firmware file name plus "
                    + listed(suffixes)
                    + " (OTA_SIDECAR_SUFFIXES; or pass --firmware)",
                    sidecar.name,
                )
            )
    result = ReleaseCheck(sidecar=sidecar, firmware_key=firmware_key, firmware=firmware)
    raw = read_sidecar(sidecar)
    if isinstance(raw, Violation):
        result.errors = [*errors, raw]
        return result
    # YAML unless the name says JSON, as the function decides; a --firmware sidecar may be
    # called anything, so its own extension is what counts. Folder defaults apply as in
    # the function (one shared resolution).
    defaults, key = local_defaults(sidecar, defaults_root)
    effective = effective_spec(
        raw,
        sidecar_key=key,
        firmware_key=firmware_key,
        defaults=defaults,
        default_product_key=default_product_key,
    )
    parsed = effective.result
    result.sources = effective.sources
    result.defaulted = bool(defaults.files or defaults.errors)
    errors.extend(parsed.errors)
    result.spec = parsed.spec
    if firmware is not None and (firmware.is_dir() or (parsed.spec and parsed.spec.files)):
        result.files = check_folder(firmware, parsed.spec, errors)
    elif firmware is not None:
        method = parsed.spec.sign_method if parsed.spec else "MD5"
        result.digest = compute_digest(firmware, method)
        errors.extend(_compare(parsed.spec, result.digest))
    result.errors = errors
    if errors:
        result.spec = None
    return result


def _compare(spec: ReleaseSpec | None, digest: Digest) -> list[Violation]:
    """What the sidecar declares versus what the file holds (the function's own checks)."""
    out: list[Violation] = []
    if not 1 <= digest.size <= FIRMWARE_SIZE_MAX:
        out.append(
            Violation(
                "firmware", f"file must be between 1 and {FIRMWARE_SIZE_MAX} bytes", digest.size
            )
        )
    if spec is None:
        return out
    if spec.size is not None and spec.size != digest.size:
        out.append(
            Violation("size", f"must match the firmware file ({digest.size} bytes)", spec.size)
        )
    if spec.sign is not None and spec.sign != digest.sign:
        out.append(
            Violation(
                "sign",
                f"must match the {digest.sign_method} of the firmware file ({digest.sign})",
                spec.sign,
            )
        )
    return out


# Multi-file releases: a release folder and the sidecar named after it ---------------------
# Checked exactly as the function will: every listed file exists and is within the size
# limits, each declared size/sign matches the bytes, and no file in the folder is missing
# from the list (the function rejects those).


def check_folder(
    folder: Path, spec: ReleaseSpec | None, errors: list[Violation]
) -> dict[str, Digest]:
    """Each listed file's digest; every problem is added to ``errors``."""
    if not folder.is_dir():
        rule = "a sidecar with files describes a release folder; this is a file"
        errors.append(Violation(FILES_KEY, rule, str(folder)))
        return {}
    if spec is None:
        return {}
    if spec.files is None:
        rule = "a release folder needs a sidecar with a files list"
        errors.append(Violation(FILES_KEY, rule, str(folder)))
        return {}
    return _check_files(folder, spec, errors)


def _check_files(folder: Path, spec: ReleaseSpec, errors: list[Violation]) -> dict[str, Digest]:
    assert spec.files is not None
    digests: dict[str, Digest] = {}
    for index, entry in enumerate(spec.files):
        path = folder / entry.name
        if not path.is_file():
            rule = f"must be a file in the release folder {folder}"
            errors.append(Violation(f"{FILES_KEY}[{index}].name", rule, entry.name))
            continue
        digest = digests[entry.name] = compute_digest(path, spec.sign_method)
        errors.extend(_declared(index, entry.name, entry.size, entry.sign, digest))
    listed = {entry.name for entry in spec.files}
    for extra in sorted(p.name for p in folder.iterdir() if p.name not in listed):
        rule = "every file in the release folder must be listed (the function rejects others)"
        errors.append(Violation(FILES_KEY, rule, extra))
    return digests


def _declared(
    index: int, name: str, size: int | None, sign: str | None, digest: Digest
) -> list[Violation]:
    """What the entry declares against what the file holds (the function's own checks)."""
    out = []
    if not 1 <= digest.size <= FIRMWARE_SIZE_MAX:
        rule = f"file must be between 1 and {FIRMWARE_SIZE_MAX} bytes"
        out.append(Violation(f"{FILES_KEY}[{index}].size", rule, f"{digest.size} ({name})"))
    if size is not None and size != digest.size:
        rule = f"must match the file {name} ({digest.size} bytes)"
        out.append(Violation(f"{FILES_KEY}[{index}].size", rule, size))
    if sign is not None and sign != digest.sign:
        rule = f"must match the {digest.sign_method} of the file {name} ({digest.sign})"
        out.append(Violation(f"{FILES_KEY}[{index}].sign", rule, sign))
    return out
