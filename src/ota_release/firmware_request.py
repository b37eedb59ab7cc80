"""One CreateOTAFirmware request in the domain's words, and its 14 fields listed once.

:class:`FirmwareRequest` is what the pipeline hands the :class:`~ota_release.ports.OtaPlatform`
port. Its attribute names are the IoT SDK's (``dest_version``, ``firmware_name``, ...), and
:data:`REQUEST_FIELDS` names each one's API parameter and sidecar key, so the API names
(``rules.API_PARAMETERS``), the sidecar's friendly keys (``sidecar.FRIENDLY_TO_API``) and
the adapter's SDK mapping are all derived from this one table.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class RequestField:
    """One CreateOTAFirmware parameter under its three names."""

    attribute: str  # FirmwareRequest's attribute, which is also the IoT SDK's
    api: str  # the API parameter name
    sidecar_key: str | None  # the sidecar's friendly key; None: the function sets it


#: Every single-file CreateOTAFirmware parameter, in the order the sidecar's keys are
#: documented (and listed in messages and the JSON Schema); FirmwareUrl, set by the
#: function, last.
REQUEST_FIELDS: tuple[RequestField, ...] = (
    RequestField("dest_version", "DestVersion", "version"),
    RequestField("firmware_name", "FirmwareName", "name"),
    RequestField("module_name", "ModuleName", "module"),
    RequestField("type", "Type", "type"),
    RequestField("src_version", "SrcVersion", "src_version"),
    RequestField("product_key", "ProductKey", "product_key"),
    RequestField("firmware_desc", "FirmwareDesc", "description"),
    RequestField("sign_method", "SignMethod", "sign_method"),
    RequestField("firmware_sign", "FirmwareSign", "sign"),
    RequestField("firmware_size", "FirmwareSize", "size"),
    RequestField("need_to_verify", "NeedToVerify", "need_to_verify"),
    RequestField("udi", "Udi", "udi"),
    RequestField("iot_instance_id", "IotInstanceId", "iot_instance_id"),
    RequestField("firmware_url", "FirmwareUrl", None),
)


#: A multi-file package's list of files: kept out of :data:`REQUEST_FIELDS`, whose fields
#: are single values with one sidecar key each; the sidecar's ``files`` has its own shape.
MULTI_FILES_FIELD = RequestField("multi_files", "MultiFiles", "files")


@dataclass(frozen=True)
class MultiFile:
    """One file of a multi-file package: CreateOTAFirmware's ``MultiFiles.N`` entry.

    Attribute names are the IoT SDK's (``CreateOTAFirmwareRequestMultiFiles``).
    """

    name: str
    url: str
    size: int | None = None
    sign_value: str | None = None
    file_md_5: str | None = None

    def api_params(self) -> dict[str, Any]:
        """The entry by API field name (``Name``, ``Url``, ``Size``, ``SignValue``, ``FileMd5``)."""
        values = {
            "Name": self.name,
            "Url": self.url,
            "Size": self.size,
            "SignValue": self.sign_value,
            "FileMd5": self.file_md_5,
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class FirmwareRequest:
    """A package to create: the release's spec plus where the bytes are and what they hash to.

    ``None`` means "not sent" (the platform's default applies). A multi-file package has
    ``multi_files`` and no ``firmware_url``/``firmware_sign``/``firmware_size`` (the API
    takes those for a one-file package only).
    """

    dest_version: str
    firmware_name: str
    firmware_url: str | None
    firmware_sign: str | None = None
    firmware_size: int | None = None
    sign_method: str = "MD5"
    iot_instance_id: str | None = None
    product_key: str | None = None
    firmware_desc: str | None = None
    type: int | None = None
    src_version: str | None = None
    module_name: str | None = None
    need_to_verify: bool | None = None
    udi: str | None = None
    multi_files: tuple[MultiFile, ...] | None = None

    def sent_attributes(self) -> dict[str, Any]:
        """The fields that are sent, by attribute (the IoT SDK's request field names)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def api_params(self) -> dict[str, Any]:
        """The fields that are sent, by API parameter name (what ``rules`` checks)."""
        sent = self.sent_attributes()
        params = {f.api: sent[f.attribute] for f in REQUEST_FIELDS if f.attribute in sent}
        if self.multi_files is not None:
            params["MultiFiles"] = [f.api_params() for f in self.multi_files]
        return params
