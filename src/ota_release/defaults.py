"""Folder defaults: keys a ``.ota-defaults.json`` (or ``.yaml``/``.yml``) supplies to every
sidecar below its folder (docs/sidecar.md, "Folder defaults").

One resolution for the function (reading OSS) and the CLI (reading local folders): both
hand :func:`resolve` a reader of keys, and :func:`effective_spec` merges what it found
with the sidecar and validates the result with the sidecar's own rules. So ``ota-release
validate`` and the function can never disagree about a release's effective values.

- The folders are the sidecar's ancestors from the watched prefix down to its own folder
  (``firmware/`` then ``firmware/acme/`` for ``firmware/acme/cam.bin.ota.json`` under the
  prefix ``firmware/``); each may hold one defaults file.
- Merged **per key**: the nearest folder's value of a key wins, and the sidecar's own value
  wins over every default. A value is taken whole: a nearer ``verify`` block replaces a
  farther one, it is not merged into it.
- Only keys that describe a product line may be defaults (:data:`DEFAULTABLE`); keys that
  name one release or one file's bytes are refused, naming the key (:data:`REFUSED`).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ota_release.ports import ObjectTooLarge
from ota_release.rules import Violation
from ota_release.sidecar import (
    API_TO_FRIENDLY,
    EXTRA_KEYS,
    FRIENDLY_TO_API,
    MAX_SIDECAR_BYTES,
    SCHEMA_KEY,
    SidecarResult,
    load_document,
    sidecar_format,
    validate_document,
)

#: The defaults file names, in the order they are looked up in each folder.
DEFAULTS_NAMES = (".ota-defaults.json", ".ota-defaults.yaml", ".ota-defaults.yml")
#: Sidecar keys a folder default may supply (friendly names; API names are accepted too).
DEFAULTABLE = (
    "product_key",
    "module",
    "type",
    "sign_method",
    "need_to_verify",
    "description",
    "udi",
    "iot_instance_id",
    "verify",
)
#: Sidecar keys a folder default may not supply, and why.
REFUSED = {
    "name": "names one package: a default would give every release below the same "
    "FirmwareName; set it in the sidecar (or leave it derived)",
    "version": "names one release; set it in each sidecar",
    "src_version": "belongs to one differential release; set it in its sidecar",
    "sign": "describes one file's bytes; set it in its sidecar (or leave it computed)",
    "size": "describes one file's bytes; set it in its sidecar (or leave it measured)",
    "files": "lists one release's files; set it in its sidecar",
}
#: Where a value came from when neither the sidecar nor a defaults file gave it.
SETTING_SOURCES = {"product_key": "OTA_PRODUCT_KEY", "iot_instance_id": "OTA_IOT_INSTANCE_ID"}
#: The reader's contract: the object's bytes (at most ``MAX_SIDECAR_BYTES``), None when
#: there is no such object, ObjectTooLarge when it is larger.
Reader = Callable[[str], "bytes | None"]


def is_defaults_key(key: str) -> bool:
    """True for a key whose file name is a defaults file's."""
    return posixpath.basename(key) in DEFAULTS_NAMES


def folders_for(sidecar_key: str, prefix: str = "") -> list[str]:
    """The folders whose defaults apply to ``sidecar_key``, root first, within ``prefix``.

    ``a/b/x.ota.json`` -> ``["", "a/", "a/b/"]``; a folder outside the watched prefix (one
    whose key does not start with it) is never read.
    """
    parts = sidecar_key.split("/")[:-1]
    folders = [""] + ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]
    return [f for f in folders if f.startswith(prefix)]


@dataclass(frozen=True)
class DefaultsFile:
    """One defaults file: its key and the values it gives (friendly key -> raw value)."""

    key: str
    values: dict[str, Any]


@dataclass
class Defaults:
    """The defaults files that apply to one sidecar, root first, and their problems."""

    files: list[DefaultsFile] = field(default_factory=list)
    errors: list[Violation] = field(default_factory=list)

    def merged(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Every defaulted key's value and the file it came from: the nearest file wins."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for found in self.files:
            for name, value in found.values.items():
                values[name] = value
                sources[name] = found.key
        return values, sources


def check_defaults_document(raw: bytes, key: str) -> tuple[dict[str, Any], list[Violation]]:
    """A defaults file's values (friendly keys), or the problems, each naming the key.

    The same loading as a sidecar's (size, encoding, strict JSON/YAML, a mapping); keys a
    default may not supply are refused with the reason; the values must pass the sidecar's
    own rules (checked as a sidecar of a placeholder release would be).
    """
    doc, errors = load_document(raw, sidecar_format(key))
    if errors:
        return {}, errors
    assert isinstance(doc, dict)
    values: dict[str, Any] = {}
    for name, value in doc.items():
        if name == SCHEMA_KEY:
            continue
        friendly = _friendly(name)
        if friendly in REFUSED:
            errors.append(
                Violation(str(name), "cannot be a folder default: " + REFUSED[friendly], value)
            )
        elif friendly not in DEFAULTABLE:
            allowed = ", ".join(DEFAULTABLE)
            errors.append(
                Violation(str(name), f"is not a folder default key (allowed: {allowed})", value)
            )
        elif friendly in values:
            errors.append(
                Violation(str(name), "is given twice (by its two names); keep one", value)
            )
        else:
            values[friendly] = value
    errors += _value_problems(values)
    return (values if not errors else {}), errors


def _friendly(name: Any) -> str:
    text = str(name)
    if text in FRIENDLY_TO_API or text in EXTRA_KEYS:
        return text
    return API_TO_FRIENDLY.get(text, text)


def _value_problems(values: dict[str, Any]) -> list[Violation]:
    """The values against the sidecar's rules, as part of a placeholder release.

    The placeholder supplies what only a sidecar may (a version, a source version for a
    differential default, a product for a verify default that relies on the sidecar's or
    the setting's), so only the defaults' own values can be at fault.
    """
    probe: dict[str, Any] = {"version": "0", "src_version": "1", **values}
    result = validate_document(probe, firmware_key="defaults", default_product_key="defaults")
    return result.errors


#: Which defaults file names a folder holds (``folder`` ends in ``/`` or is ""); None
#: when the reader cannot tell, and each name is read in turn.
NamesIn = Callable[[str], "Collection[str] | None"]


def resolve(
    read: Reader, sidecar_key: str, prefix: str = "", names_in: NamesIn | None = None
) -> Defaults:
    """The defaults files for ``sidecar_key``, read through ``read`` (OSS or local folders).

    Each folder's defaults file names are looked up in turn (or, with ``names_in``, only
    those it lists: one listing per folder instead of a read per name); two in one
    folder are refused (which would win is not obvious). A bad file's problems are
    reported with its key.
    """
    found = Defaults()
    for folder in folders_for(sidecar_key, prefix):
        listed = names_in(folder) if names_in is not None else None
        present = []
        names = DEFAULTS_NAMES if listed is None else [n for n in DEFAULTS_NAMES if n in listed]
        for name in names:
            key = folder + name
            try:
                data = read(key)
            except ObjectTooLarge:
                rule = f"must be at most {MAX_SIDECAR_BYTES} bytes"
                found.errors.append(Violation(key, rule, "larger"))
                continue
            if data is not None:
                present.append((key, data))
        if len(present) > 1:
            keys = [k for k, _ in present]
            found.errors.append(Violation(folder or "/", "one defaults file per folder", keys))
            continue
        for key, data in present:
            values, errors = check_defaults_document(data, key)
            found.errors += [Violation(f"{v.field} (in {key})", v.rule, v.value) for v in errors]
            found.files.append(DefaultsFile(key, values))
    return found


@dataclass(frozen=True)
class Effective:
    """A sidecar with its folder defaults applied: the result and each value's source."""

    result: SidecarResult
    #: friendly key -> the key of the file (or the setting) that gave the effective value
    sources: dict[str, str]


def effective_spec(
    raw: bytes,
    *,
    sidecar_key: str,
    firmware_key: str,
    defaults: Defaults,
    default_product_key: str | None = None,
    default_iot_instance_id: str | None = None,
) -> Effective:
    """The sidecar merged over its defaults, validated with the sidecar's rules.

    The sidecar wins over every default, a nearer default over a farther one; the settings
    (``OTA_PRODUCT_KEY``, ``OTA_IOT_INSTANCE_ID``) come last. A bad defaults file makes the
    release invalid, its problems named with the file.
    """
    doc, errors = load_document(raw, sidecar_format(sidecar_key))
    if errors:
        return Effective(SidecarResult(None, errors), {})
    assert isinstance(doc, dict)
    values, default_sources = defaults.merged()
    sources = {_friendly(k): sidecar_key for k in doc if k != SCHEMA_KEY}
    merged = dict(doc)
    for name, value in values.items():
        if name not in sources:
            merged[name] = value
            sources[name] = default_sources[name]
    for name, setting in SETTING_SOURCES.items():
        given = default_product_key if name == "product_key" else default_iot_instance_id
        if name not in sources and given:
            sources[name] = setting
    result = validate_document(
        merged,
        firmware_key=firmware_key,
        default_product_key=default_product_key,
        default_iot_instance_id=default_iot_instance_id,
    )
    problems = list(defaults.errors) + _sourced(result.errors, sources, sidecar_key)
    if problems:
        return Effective(SidecarResult(None, problems), sources)
    return Effective(result, sources)


def _sourced(
    errors: list[Violation], sources: Mapping[str, str], sidecar_key: str
) -> list[Violation]:
    """Errors about a defaulted value say which defaults file gave it."""
    return [Violation(_with_source(v.field, sources, sidecar_key), v.rule, v.value) for v in errors]


def _with_source(label: str, sources: Mapping[str, str], sidecar_key: str) -> str:
    """``product_key`` -> ``product_key (from firmware/.ota-defaults.json)`` when defaulted."""
    parts = []
    for part in label.split(", "):
        head = part.split(".")[0].split("[")[0].split(" ")[0]
        source = sources.get(_friendly(head))
        defaulted = source is not None and source != sidecar_key
        parts.append(f"{part} (from {source})" if defaulted else part)
    return ", ".join(parts)


def defaults_json_schema() -> dict[str, Any]:
    """The JSON Schema of a defaults file: the sidecar's, narrowed to :data:`DEFAULTABLE`
    (friendly and API names), nothing required."""
    from ota_release.sidecar import sidecar_json_schema

    schema = sidecar_json_schema()
    keep = {*DEFAULTABLE, *(FRIENDLY_TO_API[k] for k in DEFAULTABLE if k in FRIENDLY_TO_API)}
    schema["properties"] = {
        k: v for k, v in schema["properties"].items() if k in keep or k == SCHEMA_KEY
    }
    schema.pop("anyOf", None)
    schema["required"] = []
    # Only the definitions the kept keys still refer to (a sidecar's file entry is not one).
    used = json.dumps(schema["properties"])
    schema["$defs"] = {k: v for k, v in schema.get("$defs", {}).items() if f'"#/$defs/{k}"' in used}
    schema["$id"] = "https://ota-release.dev/schemas/defaults.schema.json"
    schema["title"] = "ota-release folder defaults"
    schema["description"] = (
        "Keys every sidecar below this folder takes unless it sets them itself "
        f"({' / '.join(DEFAULTS_NAMES)}; the nearest folder wins per key)."
    )
    return schema
