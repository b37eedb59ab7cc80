"""The metadata sidecar: parse it, check every CreateOTAFirmware rule, build a ReleaseSpec.

A sidecar sits next to the firmware file (``cam-2.0.0.bin.ota.json``, ``.ota.yaml`` or
``.ota.yml``). It is at most 64 KiB of UTF-8 (a BOM is tolerated) holding a mapping whose
keys are either friendly snake_case names or the API's own parameter names. Every problem
is collected, so the engineer sees the whole list in one notification.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from ota_release import rules
from ota_release.firmware_request import REQUEST_FIELDS, FirmwareRequest, MultiFile
from ota_release.rules import Violation
from ota_release.settings import DEFAULT_SIDECAR_SUFFIXES

MAX_SIDECAR_BYTES = 64 * 1024
MAX_NESTING = 16

#: friendly key -> API parameter name (from the one list of request fields)
FRIENDLY_TO_API: dict[str, str] = {
    f.sidecar_key: f.api for f in REQUEST_FIELDS if f.sidecar_key is not None
}
API_TO_FRIENDLY = {api: friendly for friendly, api in FRIENDLY_TO_API.items()}
SCHEMA_KEY = "$schema"
_FORBIDDEN_KEYS = {
    "FirmwareUrl": "the function sets FirmwareUrl from the uploaded object; remove it",
    "url": "the function sets FirmwareUrl from the uploaded object; remove it",
    "MultiFiles": "write a multi-file package as 'files' (a list of names, each optionally "
    "with size and sign); the function sets each file's Url",
}
#: Sidecar keys that are not CreateOTAFirmware parameters: what happens after the package
#: is created (``verify``: CreateOTAVerifyJob).
EXTRA_KEYS = ("verify",)
#: The multi-file release's list of files (docs/sidecar.md, "Multi-file releases").
FILES_KEY = "files"
#: Single-file keys that describe the one file; a release with ``files`` declares them per
#: file instead (the API takes FirmwareSign/FirmwareSize for one-file packages only).
_SINGLE_FILE_KEYS = ("size", "sign")
_TYPE_WORDS = {"full": rules.TYPE_FULL, "diff": rules.TYPE_DIFF, "differential": rules.TYPE_DIFF}
_DIGEST_BYTES = {"MD5": 16, "SHA256": 32}


class VerifyBlock(BaseModel):
    """``verify``: start a verification job (CreateOTAVerifyJob) once the package exists."""

    model_config = ConfigDict(extra="forbid", strict=True, title="verify")

    devices: list[str] = Field(
        description="TargetDeviceName: " + rules.VERIFY_RULES_TABLE["devices"],
        json_schema_extra={
            "minItems": 1,
            "maxItems": rules.VERIFY_DEVICES_MAX,
            "items": {
                "type": "string",
                "pattern": rules.DEVICE_NAME_PATTERN,
                "minLength": rules.DEVICE_NAME_MIN,
                "maxLength": rules.DEVICE_NAME_MAX,
            },
        },
    )
    timeout_minutes: int | None = Field(
        default=None,
        description="TimeoutInMinutes: " + rules.VERIFY_RULES_TABLE["timeout_minutes"],
        json_schema_extra={
            "minimum": rules.VERIFY_TIMEOUT_MIN,
            "maximum": rules.VERIFY_TIMEOUT_MAX,
        },
    )


class FileEntryDocument(BaseModel):
    """One entry of ``files`` written as a mapping (a bare string is just the name)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="file entry")

    name: str = Field(
        description="MultiFiles.N.Name and the file's name in the release folder: "
        + rules.RULES_TABLE["MultiFiles.N.Name"],
        json_schema_extra={
            "pattern": rules.MULTI_FILE_NAME_PATTERN,
            "maxLength": rules.MULTI_FILE_NAME_MAX,
        },
    )
    size: int | None = Field(
        default=None, ge=1, description="The file's size in bytes; checked against the object."
    )
    sign: str | None = Field(
        default=None,
        description="The file's digest in the sidecar's sign_method (hex or base64); checked "
        "against the bytes and sent as SignValue. Computed when absent.",
    )


class SidecarDocument(BaseModel):
    """The sidecar's fields with their types; the JSON Schema is generated from this model.

    Only types are enforced here: lengths, character sets and cross-field rules live in
    :mod:`ota_release.rules` and reach the schema through ``json_schema_extra``.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=True,
        title="ota-release sidecar",
        json_schema_extra={
            "description": "Metadata for one firmware file, uploaded next to it as "
            f"<firmware file name>{' / '.join(DEFAULT_SIDECAR_SUFFIXES)}. Keys may also be "
            "given by their CreateOTAFirmware parameter names."
        },
    )

    schema_: str | None = Field(
        default=None, alias="$schema", description="JSON Schema reference (ignored)."
    )
    version: str = Field(
        description="DestVersion: " + rules.RULES_TABLE["DestVersion"],
        json_schema_extra={"pattern": rules.VERSION_PATTERN, "maxLength": rules.VERSION_MAX},
    )
    name: str | None = Field(
        default=None,
        description="FirmwareName: "
        + rules.RULES_TABLE["FirmwareName"]
        + ". Derived from the file name and version when absent.",
        json_schema_extra={
            "pattern": rules.FIRMWARE_NAME_PATTERN,
            "maxLength": rules.FIRMWARE_NAME_MAX,
        },
    )
    module: str | None = Field(
        default=None,
        description="ModuleName: " + rules.RULES_TABLE["ModuleName"],
        json_schema_extra={
            "pattern": rules.MODULE_NAME_PATTERN,
            "maxLength": rules.MODULE_NAME_MAX,
        },
    )
    type: Literal["full", "diff", "differential", 0, 1] | None = Field(
        default=None, description="Type: full/0 (default) or diff/differential/1."
    )

    @field_validator("type", mode="before")
    @classmethod
    def _type_is_not_bool_or_float(cls, value: Any) -> Any:
        # Literal[0, 1] matches by equality, so True and 1.0 would pass as 1.
        if isinstance(value, (bool, float)):
            raise PydanticCustomError("literal_error", "Type must be 0, 1, 'full' or 'diff'")
        return value

    src_version: str | None = Field(
        default=None,
        description="SrcVersion: " + rules.RULES_TABLE["SrcVersion"],
        json_schema_extra={"pattern": rules.VERSION_PATTERN, "maxLength": rules.VERSION_MAX},
    )
    product_key: str | None = Field(
        default=None,
        description="ProductKey: " + rules.RULES_TABLE["ProductKey"],
        json_schema_extra={"pattern": rules.PRODUCT_KEY_PATTERN, "maxLength": rules.ID_MAX},
    )
    description: str | None = Field(
        default=None,
        description="FirmwareDesc: " + rules.RULES_TABLE["FirmwareDesc"],
        json_schema_extra={
            "minLength": 1,
            "maxLength": rules.DESC_MAX,
            "pattern": rules.FREE_TEXT_PATTERN,
        },
    )
    sign_method: str | None = Field(
        default=None,
        description="SignMethod: MD5 (default) or SHA256 (case-insensitive; SHA-256 accepted).",
    )
    sign: str | None = Field(
        default=None,
        description="FirmwareSign: hex or base64 digest of the file; checked against the "
        "bytes. Computed when absent.",
    )
    size: int | None = Field(
        default=None,
        ge=1,
        description="FirmwareSize in bytes; checked against the object. Taken from the "
        "object when absent.",
    )
    need_to_verify: bool | None = Field(
        default=None, description="NeedToVerify: " + rules.RULES_TABLE["NeedToVerify"]
    )
    udi: str | None = Field(
        default=None,
        description="Udi: " + rules.RULES_TABLE["Udi"],
        json_schema_extra={"maxLength": rules.UDI_MAX, "pattern": rules.FREE_TEXT_PATTERN},
    )
    iot_instance_id: str | None = Field(
        default=None,
        description="IotInstanceId: " + rules.RULES_TABLE["IotInstanceId"],
        json_schema_extra={"pattern": rules.IOT_INSTANCE_ID_PATTERN, "maxLength": rules.ID_MAX},
    )
    verify: VerifyBlock | None = Field(
        default=None,
        description="Start a verification job (CreateOTAVerifyJob) on these devices once the "
        "package is created; needs product_key and need_to_verify not false.",
    )
    files: list[str | FileEntryDocument] | None = Field(
        default=None,
        description="MultiFiles: a multi-file release. The sidecar <stem><suffix> describes "
        "the files stored under <stem>/ (each entry a name, or {name, size, sign}); "
        f"{rules.MULTI_FILES_MIN} to {rules.MULTI_FILES_MAX} files, names unique. Not "
        "together with size or sign, which are then given per file.",
        json_schema_extra={
            "minItems": rules.MULTI_FILES_MIN,
            "maxItems": rules.MULTI_FILES_MAX,
        },
    )


# Plain dataclasses, not models: they are only ever built from validated values, and a
# model class costs a cold start more to define (docs/benchmarks.md, "cold start").
@dataclass(frozen=True)
class VerifySpec:
    """A validated ``verify`` block."""

    devices: tuple[str, ...]
    timeout_minutes: int | None = None


@dataclass(frozen=True)
class ReleaseFile:
    """One file of a multi-file release: its name and what the sidecar declares of it."""

    name: str
    size: int | None = None
    sign: str | None = None  # lowercase hex when declared


class ReleaseSpec(BaseModel):
    """A validated release: everything CreateOTAFirmware needs except URL and digest."""

    model_config = ConfigDict(frozen=True)

    version: str
    name: str
    name_derived: bool = False
    module: str | None = None
    type: int = rules.TYPE_FULL
    src_version: str | None = None
    product_key: str | None = None
    description: str | None = None
    sign_method: str = "MD5"
    sign: str | None = None  # lowercase hex when declared
    size: int | None = None
    need_to_verify: bool | None = None
    udi: str | None = None
    iot_instance_id: str | None = None
    verify: VerifySpec | None = None
    #: a multi-file release's files (None: a single-file release)
    files: tuple[ReleaseFile, ...] | None = None

    def firmware_request(self, firmware_url: str, sign: str, size: int) -> FirmwareRequest:
        """The CreateOTAFirmware request for this spec and the measured object."""
        return FirmwareRequest(
            dest_version=self.version,
            firmware_name=self.name,
            firmware_url=firmware_url,
            firmware_sign=sign,
            firmware_size=size,
            sign_method=self.sign_method,
            iot_instance_id=self.iot_instance_id,
            product_key=self.product_key,
            firmware_desc=self.description,
            type=self.type,
            src_version=self.src_version,
            module_name=self.module,
            need_to_verify=self.need_to_verify,
            udi=self.udi,
        )

    def multi_file_request(self, files: tuple[MultiFile, ...]) -> FirmwareRequest:
        """The CreateOTAFirmware request for a multi-file release and its placed files."""
        request = self.firmware_request("", "", 0)
        return replace(
            request,
            firmware_url=None,
            firmware_sign=None,
            firmware_size=None,
            multi_files=files,
        )

    def api_params(self, firmware_url: str, sign: str, size: int) -> dict[str, Any]:
        """CreateOTAFirmware parameters for this spec and the measured object, by API name."""
        return self.firmware_request(firmware_url, sign, size).api_params()


@dataclass(frozen=True)
class SidecarResult:
    """Either a spec or the full list of problems, never both."""

    spec: ReleaseSpec | None
    errors: list[Violation]

    @property
    def ok(self) -> bool:
        return self.spec is not None


# Loading -------------------------------------------------------------------------------------


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def _depth_ok(value: Any, limit: int = MAX_NESTING) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def sidecar_format(key: str) -> Literal["json", "yaml"]:
    """JSON for ``*.json``, YAML for everything else (``.yaml``/``.yml``)."""
    return "json" if key.lower().endswith(".json") else "yaml"


def load_document(raw: bytes, fmt: Literal["json", "yaml"]) -> tuple[Any, list[Violation]]:
    """Decode and parse the sidecar bytes; return the document or a single violation."""
    if len(raw) > MAX_SIDECAR_BYTES:
        return None, [
            Violation("sidecar", f"must be at most {MAX_SIDECAR_BYTES} bytes", f"{len(raw)} bytes")
        ]
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [
            Violation("sidecar", "must be UTF-8 text", f"invalid byte at offset {exc.start}")
        ]
    if "\x00" in text:
        return None, [Violation("sidecar", "must be text, not binary", "a NUL character")]
    try:
        if fmt == "json":
            doc = json.loads(text, object_pairs_hook=_json_pairs, parse_constant=_json_constant)
        else:
            # Imported here: PyYAML costs ~20 ms of a cold start, and most sidecars are JSON.
            from ota_release.sidecar_yaml import load_yaml

            doc = load_yaml(text, max_nesting=MAX_NESTING)
    except RecursionError:
        return None, [Violation("sidecar", f"must not nest deeper than {MAX_NESTING}", "deeper")]
    except ValueError as exc:
        return None, [Violation("sidecar", f"must be valid {fmt.upper()}", _one_line(exc))]
    if not isinstance(doc, dict):
        return None, [
            Violation("sidecar", "must hold a mapping of keys to values at the top", _kind(doc))
        ]
    if not _depth_ok(doc):
        return None, [Violation("sidecar", f"must not nest deeper than {MAX_NESTING}", "deeper")]
    return doc, []


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200]


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


# Validation ----------------------------------------------------------------------------------


def parse_sidecar(
    raw: bytes,
    *,
    sidecar_key: str,
    firmware_key: str,
    default_product_key: str | None = None,
    default_iot_instance_id: str | None = None,
) -> SidecarResult:
    """Parse and validate a sidecar; collect every problem instead of stopping at the first."""
    doc, errors = load_document(raw, sidecar_format(sidecar_key))
    if errors:
        return SidecarResult(None, errors)
    assert isinstance(doc, dict)
    return validate_document(
        doc,
        firmware_key=firmware_key,
        default_product_key=default_product_key,
        default_iot_instance_id=default_iot_instance_id,
    )


def validate_document(
    doc: Mapping[Any, Any],
    *,
    firmware_key: str,
    default_product_key: str | None = None,
    default_iot_instance_id: str | None = None,
) -> SidecarResult:
    """Validate an already-parsed sidecar mapping."""
    errors: list[Violation] = []
    fields, labels = _map_keys(doc, errors)
    multi = FILES_KEY in fields
    raw_files = fields.pop(FILES_KEY, None)
    typed = _typed(fields, labels, errors)
    _normalise(typed)
    files = _release_files(raw_files, typed, labels, errors) if multi else None
    if "product_key" not in typed and default_product_key and "product_key" not in fields:
        typed["product_key"] = default_product_key
    if (
        "iot_instance_id" not in typed
        and default_iot_instance_id
        and "iot_instance_id" not in fields
    ):
        typed["iot_instance_id"] = default_iot_instance_id

    name_derived = False
    if fields.get("name") is None and isinstance(typed.get("version"), str):
        typed["name"] = derive_firmware_name(
            firmware_key, typed["version"], strip_extension=not multi
        )
        name_derived = True

    api = {FRIENDLY_TO_API[k]: v for k, v in typed.items() if k in FRIENDLY_TO_API}
    # A missing or mistyped version is already reported by the model; only an empty
    # string reaches the rules' "is required" check (for the name too, which is always set).
    required = tuple(r for r in ("DestVersion", "FirmwareName") if r in api)
    for violation in rules.check_create_firmware(api, required=required):
        friendly = API_TO_FRIENDLY.get(violation.field, violation.field)
        label = labels.get(friendly, friendly)
        if friendly == "name" and name_derived:
            label = "name (derived from the file name)"
        errors.append(Violation(label, violation.rule, violation.value))
    errors += verify_violations(typed, labels)
    if errors:
        return SidecarResult(None, errors)
    spec = ReleaseSpec(name_derived=name_derived, files=files, **typed)
    return SidecarResult(spec, [])


def verify_violations(typed: Mapping[str, Any], labels: Mapping[str, str]) -> list[Violation]:
    """The verify block against CreateOTAVerifyJob's rules and the package it will verify."""
    block = typed.get("verify")
    if not isinstance(block, Mapping):
        return []
    label = labels.get("verify", "verify")
    params = {
        "ProductKey": typed.get("product_key"),
        "TargetDeviceName": block.get("devices"),
        "TimeoutInMinutes": block.get("timeout_minutes"),
    }
    shown = {
        "ProductKey": "product_key",
        "TargetDeviceName": f"{label}.devices",
        "TimeoutInMinutes": f"{label}.timeout_minutes",
    }
    out: list[Violation] = []
    for v in rules.check_create_verify_job(params):
        head, _, rest = v.field.partition("[")
        if head == "ProductKey" and not params["ProductKey"]:
            rule = "needs product_key (CreateOTAVerifyJob requires the package's ProductKey): "
            out.append(
                Violation(
                    label, rule + "set it here, in folder defaults or as OTA_PRODUCT_KEY", None
                )
            )
            continue
        if head == "ProductKey":
            continue  # product_key's own rules are reported once, by CreateOTAFirmware's
        out.append(Violation(shown[head] + (f"[{rest}" if rest else ""), v.rule, v.value))
    if typed.get("need_to_verify") is False:
        out.append(
            Violation(
                f"{labels.get('need_to_verify', 'need_to_verify')}, {label}",
                rules.VERIFY_NEEDS_VERIFICATION,
                False,
            )
        )
    return out


def _file_label(index: int, field: str) -> str:
    """``files[2].name``: an entry's field in the sidecar's words (0-based, as in JSON)."""
    friendly = {"Name": "name", "Size": "size", "SignValue": "sign"}.get(field, field)
    return f"{FILES_KEY}[{index}]" + (f".{friendly}" if friendly else "")


def _release_files(
    raw: Any, typed: dict[str, Any], labels: dict[str, str], errors: list[Violation]
) -> tuple[ReleaseFile, ...] | None:
    """The ``files`` list checked by the API's MultiFiles rules, or None (errors added)."""
    for key in _SINGLE_FILE_KEYS:
        if key in typed:
            rule = f"must not be given with '{FILES_KEY}': declare each file's {key} in its entry"
            errors.append(Violation(labels.get(key, key), rule, typed.pop(key)))
    if not isinstance(raw, list):
        rule = "must be a list of file names or {name, size, sign} entries"
        errors.append(Violation(FILES_KEY, rule, raw))
        return None
    method = typed.get("sign_method", "MD5")
    entries = [_file_entry(item, index, method, errors) for index, item in enumerate(raw)]
    api = [
        {"Name": e.name, "Size": e.size, "SignValue": e.sign} if e else {"Name": None}
        for e in entries
    ]
    violations = rules.check_multi_files(api, method, label=_file_label, whole=FILES_KEY)
    # An entry refused for its shape is reported once, by _file_entry.
    shaped = [v for v in violations if not _is_refused_entry(v, entries)]
    errors.extend(shaped)
    if shaped or not all(entries):
        return None
    return tuple(e for e in entries if e is not None)


def _is_refused_entry(violation: Violation, entries: list[ReleaseFile | None]) -> bool:
    prefix = f"{FILES_KEY}["
    if not violation.field.startswith(prefix):
        return False
    index = int(violation.field[len(prefix) :].split("]", 1)[0])
    return entries[index] is None


def _file_entry(item: Any, index: int, method: str, errors: list[Violation]) -> ReleaseFile | None:
    """One ``files`` entry (a name, or a mapping) typed; None when its shape is wrong."""
    if isinstance(item, str):
        return ReleaseFile(name=item)
    if not isinstance(item, dict):
        rule = "must be a file name or a mapping {name, size, sign}"
        errors.append(Violation(_file_label(index, ""), rule, item))
        return None
    try:
        entry = FileEntryDocument.model_validate(item)
    except ValidationError as exc:
        for err in exc.errors():
            loc = str(err["loc"][0]) if err["loc"] else ""
            seen = None if err.get("type") == "missing" else err.get("input")
            rule = _pydantic_rule(err)
            if err.get("type") == "extra_forbidden":
                rule = "is not a file entry key (an entry has name, size and sign)"
            errors.append(Violation(_file_label(index, loc), rule, seen))
        return None
    sign = normalise_sign(entry.sign, method) if entry.sign is not None else None
    return ReleaseFile(name=entry.name, size=entry.size, sign=sign)


def _typed(
    fields: dict[str, Any], labels: dict[str, str], errors: list[Violation]
) -> dict[str, Any]:
    """The fields the model accepts, typed; a violation for each one it refuses."""
    typed: dict[str, Any] = {}
    try:
        typed = SidecarDocument.model_validate(fields).model_dump(exclude_none=True)
    except ValidationError as exc:
        bad: set[str] = set()
        for err in exc.errors():
            loc = str(err["loc"][0]) if err["loc"] else "sidecar"
            bad.add(loc)
            rule = _pydantic_rule(err)
            # For a missing field pydantic's "input" is the whole document: show nothing.
            seen = None if err.get("type") == "missing" else err.get("input")
            errors.append(Violation(_nested_label(labels.get(loc, loc), err["loc"]), rule, seen))
        typed = {k: v for k, v in fields.items() if k not in bad}
    typed.pop("schema_", None)
    typed.pop(SCHEMA_KEY, None)
    return typed


def _nested_label(label: str, loc: Any) -> str:
    """``verify.devices[0]`` for an error inside a nested value, else the key's label."""
    for part in list(loc)[1:]:
        label += f"[{part}]" if isinstance(part, int) else f".{part}"
    return label


def _normalise(typed: dict[str, Any]) -> None:
    """SignMethod upper-case, the sign as lowercase hex, a type word as its number."""
    sign_method = _normalise_sign_method(typed.get("sign_method"))
    if sign_method is not None:
        typed["sign_method"] = sign_method
    if "sign" in typed:
        method = typed.get("sign_method", "MD5")
        typed["sign"] = normalise_sign(typed["sign"], method)
    if "type" in typed and isinstance(typed["type"], str):
        typed["type"] = _TYPE_WORDS[typed["type"]]


def _map_keys(
    doc: Mapping[Any, Any], errors: list[Violation]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Map friendly and API keys onto model fields; report unknown and repeated keys."""
    fields: dict[str, Any] = {}
    labels: dict[str, str] = {}
    known = [*FRIENDLY_TO_API, *API_TO_FRIENDLY, *EXTRA_KEYS, SCHEMA_KEY, FILES_KEY]
    for key, value in doc.items():
        if not isinstance(key, str):
            errors.append(Violation("sidecar", "keys must be strings", key))
            continue
        if key in (SCHEMA_KEY, FILES_KEY):
            fields[key] = value
            labels[key] = key
            continue
        if key in _FORBIDDEN_KEYS:
            errors.append(Violation(key, _FORBIDDEN_KEYS[key], value))
            continue
        friendly = key if key in FRIENDLY_TO_API or key in EXTRA_KEYS else API_TO_FRIENDLY.get(key)
        if friendly is None:
            hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            if not hint:
                lowered = {k.lower(): k for k in known}
                hint = [lowered[key.lower()]] if key.lower() in lowered else []
            rule = "is not a sidecar key"
            rule += (
                f"; did you mean {hint[0]!r}?"
                if hint
                else f"; known keys: {', '.join([*FRIENDLY_TO_API, *EXTRA_KEYS])}"
            )
            errors.append(Violation(key, rule, value))
            continue
        if friendly in fields:
            errors.append(
                Violation(
                    key,
                    f"is given twice (as {labels[friendly]!r} and {key!r}); keep one",
                    value,
                )
            )
            continue
        fields[friendly] = value
        labels[friendly] = key
    return fields, labels


def _pydantic_rule(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "is required"
    if kind == "string_type":
        return "must be a string (quote numbers and dates in YAML)"
    if kind in ("int_type", "int_parsing"):
        return "must be an integer"
    if kind == "bool_type":
        return "must be true or false"
    if kind == "greater_than_equal":
        return "must be at least 1 byte"
    if kind == "extra_forbidden":
        return "is not a key here (verify takes devices and timeout_minutes)"
    if kind in ("literal_error", "union_tag_invalid"):
        return "must be 'full' (or 0) or 'diff' (or 1)"
    return str(err.get("msg", "is invalid"))


def _normalise_sign_method(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    upper = value.strip().upper().replace("-", "")
    return upper if upper in rules.SIGN_METHODS else value


_HEX_RE = re.compile(r"^[0-9A-Fa-f]+$")
_B64_RE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def normalise_sign(value: Any, method: str) -> Any:
    """Lowercase hex for a hex digest; base64 of a digest of the right size becomes hex.

    Anything else is returned unchanged for the rules module to reject with the value seen.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    want = _DIGEST_BYTES.get(method)
    if _HEX_RE.match(text) and (want is None or len(text) == 2 * want):
        return text.lower()
    if want is not None and _B64_RE.match(text):
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return value
        if len(decoded) == want:
            return decoded.hex()
    return value


# Derived names -------------------------------------------------------------------------------

_NAME_BAD_CHARS = re.compile(
    r"[^A-Za-z0-9_\-()\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)


def _contains_version(stem: str, version: str) -> bool:
    """The version appears in the stem as a whole token (``cam-12.0.0`` is not ``2.0.0``)."""
    pattern = rf"(?<![A-Za-z0-9]){re.escape(version)}(?![A-Za-z0-9]|\.[A-Za-z0-9])"
    return re.search(pattern, stem) is not None


def derive_firmware_name(firmware_key: str, version: str, *, strip_extension: bool = True) -> str:
    """A deterministic FirmwareName from the file name and version (docs/sidecar.md).

    ``firmware/acme/cam-2.0.0.bin`` + ``2.0.0`` -> ``cam-2_0_0``: the base name without its
    last extension, with the version appended unless the name already holds it as a whole
    token,
    and every character FirmwareName does not allow replaced by ``_``. Leading characters
    that are not letters or digits are dropped. Longer than 40 characters: the first 31
    characters, ``-`` and 8 hex digits of the SHA-256 of the untruncated name, so two long
    names that share a prefix stay distinct. A multi-file release's key is its folder
    (``firmware/acme/cam-2.0.0``), which has no extension to drop (``strip_extension``).
    """
    base = firmware_key.rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if strip_extension and "." in base.lstrip(".") else base
    if not _contains_version(stem, version):
        stem = f"{stem}-{version}"
    name = _NAME_BAD_CHARS.sub("_", stem).lstrip("_-()")
    if not name:
        name = "fw-" + _NAME_BAD_CHARS.sub("_", version)
    if len(name) > rules.FIRMWARE_NAME_MAX:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        name = name[: rules.FIRMWARE_NAME_MAX - 9] + "-" + digest
    return name


def _name_rules(node: Any) -> None:
    """Give the bare-string form of a ``files`` entry the name's rules (it is the name)."""
    if isinstance(node, dict):
        if node.get("type") == "string":
            node["pattern"] = rules.MULTI_FILE_NAME_PATTERN
            node["maxLength"] = rules.MULTI_FILE_NAME_MAX
        for value in node.values():
            _name_rules(value)
    elif isinstance(node, list):
        for value in node:
            _name_rules(value)


def sidecar_json_schema() -> dict[str, Any]:
    """The JSON Schema for sidecars, generated from :class:`SidecarDocument`.

    API parameter names are accepted as aliases of the friendly keys; each points at the
    friendly property's schema.
    """
    schema = SidecarDocument.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://ota-release.dev/schemas/sidecar.schema.json"
    props: dict[str, Any] = schema["properties"]
    for friendly, api in FRIENDLY_TO_API.items():
        props[api] = {"$ref": f"#/properties/{friendly}"}
    schema["required"] = []
    schema["anyOf"] = [{"required": ["version"]}, {"required": ["DestVersion"]}]
    schema["additionalProperties"] = False
    _name_rules(props[FILES_KEY])
    # A multi-file release declares size and sign per file (docs/sidecar.md).
    single = [k for key in _SINGLE_FILE_KEYS for k in (key, FRIENDLY_TO_API[key])]
    schema["if"] = {"required": [FILES_KEY]}
    schema["then"] = {"not": {"anyOf": [{"required": [k]} for k in single]}}
    return schema
