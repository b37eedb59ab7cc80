"""The CreateOTAFirmware request rules, in one place.

Every constraint that IoT Platform documents for CreateOTAFirmware lives here. The sidecar
validation, the local IoT stand-in (``localcloud.iot``), the generated JSON Schema and the
docs all read it, so a rule is changed once.

Parameters are keyed by their API names (``DestVersion``, ``FirmwareName``, ...). Values may
be typed (as the sidecar produces them) or strings (as they arrive in an RPC query string);
:func:`check_create_firmware` accepts both and reports every violation at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ota_release.firmware_request import REQUEST_FIELDS

# Documented limits -------------------------------------------------------------------------

FIRMWARE_NAME_MAX = 40
VERSION_MAX = 64
MODULE_NAME_MAX = 64
DESC_MAX = 100
UDI_MAX = 4096
ID_MAX = 64
SIGN_METHODS = ("MD5", "SHA256")
SIGN_HEX_LENGTH = {"MD5": 32, "SHA256": 64}
TYPE_FULL = 0
TYPE_DIFF = 1
#: "HTTPS download: one file <= 1000 MB" and GenerateOTAUploadURL's file limit. The docs
#: do not say whether MB means 10^6 or 2^20 bytes; we take the larger reading so that a
#: package the platform accepts is never rejected here.
FIRMWARE_SIZE_MAX = 1000 * 1024 * 1024
#: FileSuffix values GenerateOTAUploadURL accepts, in the API reference's order (bin is
#: the default).
UPLOAD_FILE_SUFFIXES = ("bin", "dav", "apk", "tar", "gz", "tar.gz", "zip", "gzip")
#: Packages per account (newer docs: per instance).
PACKAGE_QUOTA = 500
#: CreateOTAFirmware calls per second per account, shared by its RAM users.
ACCOUNT_QPS = 10
#: MultiFiles (a package of several files): "The name must be 1 to 32 characters in length.
#: You can specify up to 20 file names. Each name must be unique in the OTA update package"
#: (SDK alibabacloud-iot20180120 5.1.0, CreateOTAFirmwareRequestMultiFiles.name).
MULTI_FILE_NAME_MAX = 32
MULTI_FILES_MAX = 20
#: FirmwareUrl "may be passed only when the package holds one file, and must be then"
#: (API reference 147311, help.aliyun.com): a one-file package is never sent as MultiFiles.
MULTI_FILES_MIN = 2
#: The fields of one MultiFiles entry, as the API names them.
MULTI_FILE_FIELDS = ("Name", "Url", "Size", "SignValue", "FileMd5")
#: Parameters that describe the one file of a single-file package (API reference 147311:
#: "only when the OTA package holds one file may this be passed").
SINGLE_FILE_ONLY = ("FirmwareUrl", "FirmwareSign", "FirmwareSize")

# Character classes. Kanji/Hanzi, Hiragana and Katakana are allowed in FirmwareName by the
# Chinese reference; the English one lists ASCII only. Accepting both is the superset.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
FIRMWARE_NAME_PATTERN = rf"^[A-Za-z0-9{_CJK}][A-Za-z0-9{_CJK}_\-()]*$"
VERSION_PATTERN = r"^[A-Za-z0-9._-]+$"
MODULE_NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
#: Not documented beyond "the ProductKey of the product"; real keys are short alphanumerics.
#: A lenient sanity rule that stops whitespace, slashes and the like.
PRODUCT_KEY_PATTERN = r"^[A-Za-z0-9_-]+$"
IOT_INSTANCE_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
#: Free text (FirmwareDesc, Udi) may hold any character but these: C0 controls, DEL and C1
#: controls. The API documents none of them; they are invisible in the console and in
#: notifications, and a UDI is written in its human-readable form (GS1 application
#: identifiers in parentheses), not with the barcode's GS separator. See docs/sidecar.md.
FREE_TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
#: MultiFiles.N.Name: the API documents its length and uniqueness but no character set.
#: The project's rule: FirmwareName's ASCII set plus '.', starting with a letter or digit.
#: The name is also the file's key segment in the release folder (so no '/'), a URL path
#: segment and a file name on the device (so no '.'/'..', spaces or control characters).
MULTI_FILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._()-]*$"

_NAME_RE = re.compile(FIRMWARE_NAME_PATTERN)
_VERSION_RE = re.compile(VERSION_PATTERN)
_MODULE_RE = re.compile(MODULE_NAME_PATTERN)
_PRODUCT_KEY_RE = re.compile(PRODUCT_KEY_PATTERN)
_INSTANCE_RE = re.compile(IOT_INSTANCE_ID_PATTERN)
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_FREE_TEXT_RE = re.compile(FREE_TEXT_PATTERN)
_MULTI_NAME_RE = re.compile(MULTI_FILE_NAME_PATTERN)

#: API parameter names that CreateOTAFirmware accepts for a single-file package.
API_PARAMETERS = tuple(f.api for f in REQUEST_FIELDS)
#: FirmwareUrl is required of a single-file package only; a MultiFiles package has a Url
#: per file instead (:func:`check_create_firmware` applies the difference).
REQUIRED = ("DestVersion", "FirmwareName", "FirmwareUrl")
MULTI_FILES = "MultiFiles"


@dataclass(frozen=True)
class Violation:
    """One broken rule: which field, which rule, and the value that broke it."""

    field: str
    rule: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.field}: {self.rule} (got {_show(self.value)})"

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "rule": self.rule, "value": _show(self.value)}


def _show(value: Any, limit: int = 80) -> str:
    # Containers are summarised, never repr'd: a hostile sidecar can nest them deeply.
    if isinstance(value, (dict, list, tuple, set)):
        return f"<{type(value).__name__} of {len(value)} items>"
    if isinstance(value, str) and len(value) > 4 * limit:
        value = value[: 4 * limit]
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Single-field checks -----------------------------------------------------------------------


def check_firmware_name(value: Any, field: str = "FirmwareName") -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(field, "must be a string", value)]
    out = []
    if not 1 <= len(value) <= FIRMWARE_NAME_MAX:
        out.append(Violation(field, f"must be 1 to {FIRMWARE_NAME_MAX} characters long", value))
    if value and not _NAME_RE.fullmatch(value):
        out.append(
            Violation(
                field,
                "may contain only letters (incl. Chinese/Japanese), digits, '-', '_', '(' "
                "and ')', and must start with a letter or a digit",
                value,
            )
        )
    return out


def check_version(value: Any, field: str) -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(field, "must be a string", value)]
    out = []
    if not 1 <= len(value) <= VERSION_MAX:
        out.append(Violation(field, f"must be 1 to {VERSION_MAX} characters long", value))
    if value and not _VERSION_RE.fullmatch(value):
        out.append(Violation(field, "may contain only letters, digits, '.', '-' and '_'", value))
    return out


def check_module_name(value: Any, field: str = "ModuleName") -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(field, "must be a string", value)]
    out = []
    if not 1 <= len(value) <= MODULE_NAME_MAX:
        out.append(Violation(field, f"must be 1 to {MODULE_NAME_MAX} characters long", value))
    if value and not _MODULE_RE.fullmatch(value):
        out.append(Violation(field, "may contain only letters, digits, '.', '-' and '_'", value))
    return out


ENCODABLE_RULE = "must be text that UTF-8 can encode, as the API sends it (no lone surrogates)"
CONTROL_RULE = "must not contain control characters (U+0000-U+001F, U+007F-U+009F)"


def check_encodable(value: Any, field: str) -> list[Violation]:
    """A string the SDK can send: the RPC query is UTF-8, and a lone surrogate is not."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [Violation(field, ENCODABLE_RULE, value)]
    return []


def check_free_text(value: str, field: str) -> list[Violation]:
    if not _FREE_TEXT_RE.fullmatch(value):
        return [Violation(field, CONTROL_RULE, value)]
    return []


def check_description(value: Any, field: str = "FirmwareDesc") -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(field, "must be a string", value)]
    if not 1 <= len(value) <= DESC_MAX:
        return [Violation(field, f"must be 1 to {DESC_MAX} characters long", value)]
    return check_encodable(value, field) or check_free_text(value, field)


def check_udi(value: Any, field: str = "Udi") -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(field, "must be a string", value)]
    if len(value) > UDI_MAX:
        return [Violation(field, f"must be at most {UDI_MAX} characters long", value)]
    return check_encodable(value, field) or check_free_text(value, field)


def check_identifier(value: Any, field: str, pattern: re.Pattern[str]) -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(field, "must be a string", value)]
    if not 1 <= len(value) <= ID_MAX or not pattern.fullmatch(value):
        return [
            Violation(
                field,
                f"must be 1 to {ID_MAX} characters of letters, digits, '-' and '_'",
                value,
            )
        ]
    return []


def check_sign_method(value: Any, field: str = "SignMethod") -> list[Violation]:
    if value not in SIGN_METHODS:
        return [Violation(field, "must be one of " + ", ".join(SIGN_METHODS), value)]
    return []


def check_sign(value: Any, method: Any, field: str = "FirmwareSign") -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(field, "must be a string", value)]
    if not _HEX_RE.fullmatch(value):
        return [Violation(field, "must be a hexadecimal digest", value)]
    expected = SIGN_HEX_LENGTH.get(method) if isinstance(method, str) else None
    if expected is not None and len(value) != expected:
        return [
            Violation(field, f"must be {expected} hex characters for SignMethod {method}", value)
        ]
    return []


def check_size(value: Any, field: str = "FirmwareSize") -> list[Violation]:
    size = _as_int(value)
    if size is None:
        return [Violation(field, "must be an integer number of bytes", value)]
    if not 1 <= size <= FIRMWARE_SIZE_MAX:
        return [Violation(field, f"must be between 1 and {FIRMWARE_SIZE_MAX} bytes", value)]
    return []


def check_type(value: Any, field: str = "Type") -> list[Violation]:
    if _as_int(value) not in (TYPE_FULL, TYPE_DIFF):
        return [Violation(field, "must be 0 (full) or 1 (differential)", value)]
    return []


def check_need_to_verify(value: Any, field: str = "NeedToVerify") -> list[Violation]:
    if _as_bool(value) is None:
        return [Violation(field, "must be true or false", value)]
    return []


def check_url(value: Any, field: str = "FirmwareUrl") -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(field, "must be a string", value)]
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [Violation(field, "must be an http(s) URL of an object in OSS", value)]
    return []


# Whole-request check ------------------------------------------------------------------------


def check_create_firmware(
    params: Mapping[str, Any], *, required: tuple[str, ...] = REQUIRED
) -> list[Violation]:
    """Check a CreateOTAFirmware request; return every violation (empty when valid).

    ``params`` is keyed by API parameter names; ``None`` values count as absent.
    ``required`` lets the sidecar check run before the FirmwareUrl exists.
    """
    p = {k: v for k, v in params.items() if v is not None}
    files = p.pop(MULTI_FILES, None)
    out: list[Violation] = []
    if files is not None:
        required = tuple(r for r in required if r != "FirmwareUrl")
        out += [
            Violation(name, MULTI_EXCLUSIVE_RULE, p[name]) for name in SINGLE_FILE_ONLY if name in p
        ]
        out += check_multi_files(files, p.get("SignMethod", "MD5"))
    for name in required:
        if name not in p or p[name] == "":
            out.append(Violation(name, "is required", p.get(name)))
    out += _unsendable(p)
    out += _field_rules(p)
    return out + _type_rules(p)


MULTI_EXCLUSIVE_RULE = (
    "may be sent only for a one-file package, not together with MultiFiles "
    "(each file's Url, Size and SignValue go in MultiFiles)"
)
MULTI_NAME_RULE = (
    "may contain only letters, digits, '.', '-', '_', '(' and ')', and must start with "
    "a letter or a digit"
)


def api_file_label(index: int, field: str) -> str:
    """``MultiFiles.3.Name``: the API's 1-based name of an entry's field."""
    return f"{MULTI_FILES}.{index + 1}.{field}"


def check_multi_files(
    files: Any,
    sign_method: Any = "MD5",
    label: Callable[[int, str], str] = api_file_label,
    whole: str = MULTI_FILES,
) -> list[Violation]:
    """MultiFiles' rules: 2 to 20 entries, each a Name (1-32 characters, unique) and the
    optional Url, Size, SignValue and FileMd5. ``label`` names an entry's field in the
    caller's words (the sidecar says ``files[2].name``); ``whole`` names the list.
    """
    if not isinstance(files, (list, tuple)):
        return [Violation(whole, "must be a list of files", files)]
    out: list[Violation] = []
    if not MULTI_FILES_MIN <= len(files) <= MULTI_FILES_MAX:
        out.append(
            Violation(
                whole,
                f"must list {MULTI_FILES_MIN} to {MULTI_FILES_MAX} files (a one-file package "
                "is a single-file release: the file with its own sidecar)",
                f"{len(files)} files",
            )
        )
    seen: dict[str, int] = {}
    for index, entry in enumerate(files):
        if not isinstance(entry, Mapping):
            out.append(Violation(label(index, ""), "must be a file entry", entry))
            continue
        out += _multi_file_entry(entry, index, sign_method, label)
        name = entry.get("Name")
        if isinstance(name, str) and name in seen:
            rule = f"must be unique in the package (also entry {seen[name]})"
            out.append(Violation(label(index, "Name"), rule, name))
        elif isinstance(name, str):
            seen[name] = index
    return out


def check_multi_file_name(value: Any, field: str) -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(field, "must be a string", value)]
    if not 1 <= len(value) <= MULTI_FILE_NAME_MAX:
        return [Violation(field, f"must be 1 to {MULTI_FILE_NAME_MAX} characters long", value)]
    if not _MULTI_NAME_RE.fullmatch(value):
        return [Violation(field, MULTI_NAME_RULE, value)]
    return []


def _multi_file_entry(
    entry: Mapping[str, Any], index: int, method: Any, label: Callable[[int, str], str]
) -> list[Violation]:
    out = check_multi_file_name(entry.get("Name"), label(index, "Name"))
    if entry.get("Url") is not None:
        out += check_url(entry["Url"], label(index, "Url"))
    if entry.get("Size") is not None:
        out += check_size(entry["Size"], label(index, "Size"))
    if entry.get("SignValue") is not None:
        out += check_sign(entry["SignValue"], method, label(index, "SignValue"))
    if entry.get("FileMd5") is not None:
        out += check_sign(entry["FileMd5"], "MD5", label(index, "FileMd5"))
    return out


def _unsendable(p: dict[str, Any]) -> list[Violation]:
    """Every string must survive the SDK's UTF-8 encoding; one that cannot is reported once,
    for that reason alone, and dropped from ``p`` (its other rules would only add noise)."""
    out: list[Violation] = []
    for name in [k for k in p if k not in ("FirmwareDesc", "Udi")]:
        violations = check_encodable(p[name], name)
        if violations:
            out += violations
            del p[name]
    return out


#: Rules of one parameter each, applied when the parameter is present (and, for the
#: first three, not empty: emptiness is the ``required`` check's to report).
_NON_EMPTY_CHECKS: dict[str, Callable[[Any], list[Violation]]] = {
    "FirmwareName": check_firmware_name,
    "DestVersion": lambda v: check_version(v, "DestVersion"),
    "FirmwareUrl": check_url,
}
_PRESENT_CHECKS: dict[str, Callable[[Any], list[Violation]]] = {
    "FirmwareDesc": check_description,
    "ModuleName": check_module_name,
    "ProductKey": lambda v: check_identifier(v, "ProductKey", _PRODUCT_KEY_RE),
    "IotInstanceId": lambda v: check_identifier(v, "IotInstanceId", _INSTANCE_RE),
    "Udi": check_udi,
    "NeedToVerify": check_need_to_verify,
    "FirmwareSize": check_size,
}


def _field_rules(p: Mapping[str, Any]) -> list[Violation]:
    out: list[Violation] = []
    for name, check in _NON_EMPTY_CHECKS.items():
        if p.get(name):
            out += check(p[name])
    for name, check in _PRESENT_CHECKS.items():
        if name in p:
            out += check(p[name])
    method = p.get("SignMethod", "MD5")
    if "SignMethod" in p:
        out += check_sign_method(method)
    if "FirmwareSign" in p:
        out += check_sign(p["FirmwareSign"], method)
    return out


def _type_rules(p: Mapping[str, Any]) -> list[Violation]:
    out: list[Violation] = []
    fw_type = TYPE_FULL
    if "Type" in p:
        type_errors = check_type(p["Type"])
        out += type_errors
        fw_type = _as_int(p["Type"]) if not type_errors else TYPE_FULL  # type: ignore[assignment]
    if "SrcVersion" in p:
        out += check_version(p["SrcVersion"], "SrcVersion")
    if fw_type == TYPE_DIFF:
        src = p.get("SrcVersion")
        if not src:
            out.append(Violation("SrcVersion", "is required when Type is 1 (differential)", src))
        elif src == p.get("DestVersion"):
            out.append(
                Violation(
                    "SrcVersion",
                    "must differ from DestVersion when Type is 1 (differential)",
                    src,
                )
            )
    return out


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,19}", value):
        return int(value)
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def parse_query_bool(value: Any) -> bool | None:
    """``True``/``False`` as the Tea SDK sends them (and lowercase), else None."""
    return _as_bool(value)


def parse_query_int(value: Any) -> int | None:
    """A non-negative decimal integer as found in a query string, else None."""
    return _as_int(value)


#: Human-readable rule table used by the docs and the JSON Schema descriptions.
RULES_TABLE: dict[str, str] = {
    "FirmwareName": f"1-{FIRMWARE_NAME_MAX} chars: letters (incl. Chinese/Japanese), digits, "
    "- _ ( ); starts with a letter or digit; unique per account",
    "DestVersion": f"required, 1-{VERSION_MAX} chars of A-Z a-z 0-9 . - _",
    "SrcVersion": f"1-{VERSION_MAX} chars of A-Z a-z 0-9 . - _; required for Type 1 and must "
    "differ from DestVersion",
    "ModuleName": f"1-{MODULE_NAME_MAX} chars of A-Z a-z 0-9 . - _; omitted = default module",
    "FirmwareDesc": f"1-{DESC_MAX} chars (a Chinese character counts as one); "
    "no control characters",
    "SignMethod": " or ".join(SIGN_METHODS) + " (default MD5)",
    "FirmwareSign": "hex digest: 32 chars for MD5, 64 for SHA256",
    "FirmwareSize": f"1-{FIRMWARE_SIZE_MAX} bytes",
    "Type": "0 full (default) or 1 differential",
    "NeedToVerify": "true (default) or false",
    "Udi": f"at most {UDI_MAX} chars; no control characters",
    "ProductKey": f"1-{ID_MAX} chars of letters, digits, - _",
    "IotInstanceId": f"1-{ID_MAX} chars of letters, digits, - _ (required on purchased instances)",
    "FirmwareUrl": "required, http(s) URL of the package in OSS",
    "MultiFiles.N.Name": f"1-{MULTI_FILE_NAME_MAX} chars of A-Z a-z 0-9 . - _ ( ), starting with "
    "a letter or digit; unique in the package",
    "MultiFiles": f"{MULTI_FILES_MIN}-{MULTI_FILES_MAX} files instead of FirmwareUrl/Sign/Size; "
    f"each Name 1-{MULTI_FILE_NAME_MAX} chars of A-Z a-z 0-9 . - _ ( ) starting with a letter "
    "or digit, unique in the package",
}


# CreateOTAVerifyJob ---------------------------------------------------------------------------
#
# Sources: the CreateOTAVerifyJob API reference ("a maximum of 10 devices", TargetDeviceName
# devices of the package's product, TimeoutInMinutes 1 to 1440, ProductKey required, "you
# cannot initiate a verification task for an update package that is under verification or
# passes the verification"); the DeviceName rule is RegisterDevice's, as the SDK documents it
# (alibabacloud-iot20180120 5.1.0 models.py, RegisterDeviceRequest.device_name).

VERIFY_DEVICES_MAX = 10
VERIFY_TIMEOUT_MIN = 1
VERIFY_TIMEOUT_MAX = 1440
DEVICE_NAME_MIN = 4
DEVICE_NAME_MAX = 32
DEVICE_NAME_PATTERN = r"^[A-Za-z0-9_\-@.:]+$"
_DEVICE_NAME_RE = re.compile(DEVICE_NAME_PATTERN)
#: The one rule verification adds to the package: a verify job needs a package that was
#: created with NeedToVerify true (false means "no verification", Status -1).
VERIFY_NEEDS_VERIFICATION = (
    "must not be false when the sidecar asks for verification (verify): CreateOTAVerifyJob "
    "refuses a package that needs no verification"
)


def check_device_name(value: Any, field: str = "TargetDeviceName") -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(field, "must be a string", value)]
    if not DEVICE_NAME_MIN <= len(value) <= DEVICE_NAME_MAX or not _DEVICE_NAME_RE.fullmatch(value):
        return [
            Violation(
                field,
                f"must be a DeviceName: {DEVICE_NAME_MIN} to {DEVICE_NAME_MAX} characters of "
                "letters, digits, '-', '_', '@', '.' and ':'",
                value,
            )
        ]
    return []


def check_verify_devices(devices: Any, field: str = "TargetDeviceName") -> list[Violation]:
    """1 to 10 DeviceNames, each a valid one."""
    if not isinstance(devices, (list, tuple)):
        return [Violation(field, "must be a list of device names", devices)]
    if not 1 <= len(devices) <= VERIFY_DEVICES_MAX:
        return [
            Violation(
                field, f"must list 1 to {VERIFY_DEVICES_MAX} devices", f"{len(devices)} devices"
            )
        ]
    # A device named twice is sent as given: the reference is silent on it, and a rule
    # here must never refuse what the platform accepts (docs/sidecar.md, "Rules").
    out: list[Violation] = []
    for i, name in enumerate(devices):
        out += check_device_name(name, f"{field}[{i}]")
    return out


def check_verify_timeout(value: Any, field: str = "TimeoutInMinutes") -> list[Violation]:
    minutes = _as_int(value)
    if minutes is None or not VERIFY_TIMEOUT_MIN <= minutes <= VERIFY_TIMEOUT_MAX:
        return [
            Violation(
                field,
                f"must be a whole number of minutes from {VERIFY_TIMEOUT_MIN} to "
                f"{VERIFY_TIMEOUT_MAX}",
                value,
            )
        ]
    return []


def check_create_verify_job(params: Mapping[str, Any]) -> list[Violation]:
    """CreateOTAVerifyJob's documented parameter rules, by API name (``TargetDeviceName`` a
    list); ``FirmwareId`` and the package's own state are the platform's to check."""
    out: list[Violation] = []
    product_key = params.get("ProductKey")
    if not product_key:
        out.append(Violation("ProductKey", "is required by CreateOTAVerifyJob", product_key))
    else:
        out += check_identifier(product_key, "ProductKey", _PRODUCT_KEY_RE)
    out += check_verify_devices(params.get("TargetDeviceName"))
    if params.get("TimeoutInMinutes") is not None:
        out += check_verify_timeout(params["TimeoutInMinutes"])
    return out


#: The verify block's rules, for the docs and the JSON Schema (keyed by sidecar key).
VERIFY_RULES_TABLE: dict[str, str] = {
    "devices": f"TargetDeviceName: 1-{VERIFY_DEVICES_MAX} DeviceNames of the "
    f"package's product, each {DEVICE_NAME_MIN}-{DEVICE_NAME_MAX} chars of letters, digits, "
    "- _ @ . :",
    "timeout_minutes": f"TimeoutInMinutes: {VERIFY_TIMEOUT_MIN}-{VERIFY_TIMEOUT_MAX} "
    "(optional; without it a device's update has no time limit)",
}
