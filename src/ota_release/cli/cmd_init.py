"""``ota-release init``: write a sidecar that is valid by construction.

The size and digest are measured from the file (streamed, with a progress bar on a
terminal), the FirmwareName is written out even when derived so that reviewers see the
name IoT Platform will show, and the document is run through the function's validation
before it is written: ``init`` never leaves an invalid sidecar behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ota_release.cli.common import CommandFailed, UsageProblem
from ota_release.cli.shared import shared_settings_options

if TYPE_CHECKING:
    from ota_release.sidecar import SidecarResult

#: Published URL of the sidecar JSON Schema (``schemas/sidecar.schema.json`` in the repo,
#: the ``$id`` of ``sidecar_json_schema()``). A sidecar travels with its firmware into OSS
#: and out to other machines, so it refers to the published schema, never to a path in
#: somebody's checkout; ``--schema-ref`` overrides it for local editor setups.
SCHEMA_URL = "https://ota-release.dev/schemas/sidecar.schema.json"


def build_document(
    *,
    version: str,
    name: str,
    size: int,
    sign_method: str,
    sign: str,
    module: str | None = None,
    fw_type: str = "full",
    src_version: str | None = None,
    product_key: str | None = None,
    description: str | None = None,
    schema_ref: str = SCHEMA_URL,
    verify: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The sidecar mapping, friendly keys in the order a reader wants them."""
    doc: dict[str, Any] = {"$schema": schema_ref, "name": name, "version": version}
    optional = {
        "type": fw_type if fw_type != "full" else None,
        "src_version": src_version,
        "module": module,
        "product_key": product_key,
        "description": description,
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    doc.update({"size": size, "sign_method": sign_method, "sign": sign})
    if verify is not None:
        doc["verify"] = verify
    return doc


def render(doc: dict[str, Any], fmt: str) -> bytes:
    """JSON with a trailing newline, or YAML with the editor schema modeline."""
    if fmt == "json":
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    import yaml

    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"# yaml-language-server: $schema={doc['$schema']}\n{body}".encode()


def write_new(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write atomically; without ``overwrite`` fail if the file appeared meanwhile."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if overwrite:
            Path(tmp).replace(path)
        else:
            os.link(tmp, path)  # fails with FileExistsError instead of clobbering
    finally:
        Path(tmp).unlink(missing_ok=True)


@click.command(
    short_help="Write a sidecar with the size and digest measured.",
    epilog="""\b
Examples:
  ota-release init build/cam-2.0.0.bin --version 2.0.0 --product-key a1Cam
  ota-release init cam-2.1.0.bin --version 2.1.0 --type diff --src-version 2.0.0
  ota-release init cam.bin --version 3.0.0 --sign-method SHA256 --format yaml --force
  ota-release init build/cam-2.0.0 --version 2.0.0 --file app.bin --file boot.img

Writes FIRMWARE.ota.json (or .ota.yaml; the first fitting OTA_SIDECAR_SUFFIXES entry
when that is set) next to the file. Exit status: 0 written,
1 refused (file exists without --force, or the values break a rule), 2 usage error.
""",
)
@click.argument("firmware", type=click.Path(exists=True, readable=True, path_type=Path))
@click.option("--version", "version", required=True, help="DestVersion, e.g. 2.0.0.")
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="NAME",
    help="A multi-file release: FIRMWARE is the release folder and NAME one of its files "
    "(repeat, 2 to 20 times); the sidecar FOLDER.ota.json lists each with size and sign.",
)
@click.option("--name", help="FirmwareName (default: derived from the file name and version).")
@click.option("--module", help="ModuleName (default: the product's default module).")
@click.option(
    "--type",
    "fw_type",
    type=click.Choice(["full", "diff"]),
    default="full",
    show_default=True,
    help="Full package or differential (diff needs --src-version).",
)
@click.option("--src-version", help="SrcVersion, required for --type diff.")
@click.option("--product-key", help="ProductKey the package belongs to.")
@click.option("--description", help="FirmwareDesc, up to 100 characters.")
@click.option(
    "--sign-method",
    type=click.Choice(["MD5", "SHA256"], case_sensitive=False),
    default="MD5",
    show_default=True,
    help="Digest algorithm written to the sidecar.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "yaml"]),
    default="json",
    show_default=True,
    help="Sidecar format (.ota.json or .ota.yaml).",
)
@click.option(
    "--schema-ref",
    default=SCHEMA_URL,
    show_default=True,
    metavar="URL|PATH",
    help="What $schema points at (e.g. a relative path to schemas/sidecar.schema.json).",
)
@click.option(
    "--verify-device",
    "verify_devices",
    multiple=True,
    metavar="NAME",
    help="Start a verification job on this device once the package is created (repeat "
    "for up to 10 devices; needs a ProductKey).",
)
@click.option(
    "--verify-timeout",
    type=int,
    metavar="MINUTES",
    help="The verification's TimeoutInMinutes (1-1440; with --verify-device).",
)
@click.option(
    "--defaults-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The folder that stands for the watched prefix: the sidecar is checked with the "
    "folder defaults from it down (default: the current directory, when the file is below it).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing sidecar of the same format.")
@shared_settings_options(product_key=False)
def init(
    firmware: Path,
    version: str,
    files: tuple[str, ...],
    name: str | None,
    module: str | None,
    fw_type: str,
    src_version: str | None,
    product_key: str | None,
    description: str | None,
    sign_method: str,
    fmt: str,
    schema_ref: str,
    verify_devices: tuple[str, ...],
    verify_timeout: int | None,
    defaults_root: Path | None,
    force: bool,
    sidecar_suffixes: str | None,
) -> None:
    """Write the sidecar for FIRMWARE, with its size and digest measured.

    Folder defaults (.ota-defaults.*) are not copied into the sidecar: it is checked
    together with them, as the function will read it, and the values they supply are
    listed with their files.
    """
    from ota_release.cli.common import escape, stdout_console
    from ota_release.cli.shared import shared_settings
    from ota_release.sidecar import derive_firmware_name

    verify = _verify_block(verify_devices, verify_timeout)
    suffixes = shared_settings(sidecar_suffixes=sidecar_suffixes).sidecar_suffixes
    _check_files_usage(firmware, files)
    target = _target(firmware, fmt, suffixes, force)
    sign_method = sign_method.upper()
    measured = _measure(firmware, files, sign_method)
    doc = build_document(
        version=version,
        name=name or derive_firmware_name(firmware.name, version, strip_extension=not files),
        size=measured.size,
        sign_method=sign_method,
        sign=measured.sign,
        module=module,
        fw_type=fw_type,
        src_version=src_version,
        product_key=product_key,
        description=description,
        schema_ref=schema_ref,
        verify=verify,
    )
    data = render(_with_files(doc, measured), fmt)
    checked, defaulted = _check(data, target, firmware, defaults_root)
    _write(target, data, checked, force)
    assert checked.spec is not None
    what = f"{len(files)} files" if files else f"{measured.size} bytes, {sign_method}"
    console = stdout_console()
    console.print(
        f"wrote {escape(target)}: {escape(checked.spec.name)} {escape(checked.spec.version)}, "
        f"{what} {measured.sign if not files else ''}".rstrip()
    )
    for key, source in sorted(defaulted.items()):
        console.print(f"  {escape(key)} from the folder defaults {escape(source)}")


def _write(target: Path, data: bytes, checked: SidecarResult, force: bool) -> None:
    """Write the checked sidecar, or say which rules its values break (exit 1)."""
    from ota_release.cli.common import escape, print_violations, stdout_console

    if checked.spec is None:
        console = stdout_console()
        console.print(f"[red]not written[/red] {escape(target)}: the values break these rules")
        print_violations(console, checked.errors)
        raise click.exceptions.Exit(1)
    try:
        write_new(target, data, overwrite=force)
    except FileExistsError as exc:
        raise CommandFailed(f"{target} already exists; pass --force to overwrite it") from exc


def _verify_block(devices: tuple[str, ...], timeout: int | None) -> dict[str, Any] | None:
    """The sidecar's ``verify`` block from the options (None without devices)."""
    if timeout is not None and not devices:
        raise click.UsageError("--verify-timeout goes with at least one --verify-device")
    if not devices:
        return None
    block: dict[str, Any] = {"devices": list(devices)}
    if timeout is not None:
        block["timeout_minutes"] = timeout
    return block


def _check(
    data: bytes, target: Path, firmware: Path, defaults_root: Path | None
) -> tuple[SidecarResult, dict[str, str]]:
    """The document as the function will read it (with its folder defaults), and the
    values those defaults supply (key -> defaults file)."""
    from ota_release.cli.checks import local_defaults
    from ota_release.defaults import effective_spec

    defaults, key = local_defaults(target, defaults_root)
    effective = effective_spec(data, sidecar_key=key, firmware_key=firmware.name, defaults=defaults)
    from_defaults = {k: v for k, v in effective.sources.items() if v != key}
    return effective.result, from_defaults


def _check_files_usage(firmware: Path, files: tuple[str, ...]) -> None:
    if firmware.is_dir() != bool(files):
        raise UsageProblem(
            "--file names the files of a release folder: pass the folder as FIRMWARE with "
            "--file for each file, or a firmware file without --file"
        )


def _with_files(doc: dict[str, Any], measured: _Measured) -> dict[str, Any]:
    """A multi-file sidecar declares size and sign per file, in ``files``."""
    if not measured.files:
        return doc
    single = ("size", "sign")
    return {k: v for k, v in doc.items() if k not in single} | {"files": measured.files}


@dataclass(frozen=True)
class _Measured:
    """The firmware file's size and sign, or each listed file's entry of a folder."""

    size: int = 0
    sign: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)


def _measure(firmware: Path, files: tuple[str, ...], sign_method: str) -> _Measured:
    from ota_release.cli.checks import compute_digest

    if not files:
        digest = compute_digest(firmware, sign_method)
        return _Measured(digest.size, digest.sign)
    entries = []
    for name in files:
        path = firmware / name
        if not path.is_file():
            raise UsageProblem(f"--file {name}: {path} is not a file in the release folder")
        digest = compute_digest(path, sign_method)
        entries.append({"name": name, "size": digest.size, "sign": digest.sign})
    return _Measured(files=entries)


def _target(firmware: Path, fmt: str, suffixes: tuple[str, ...], force: bool) -> Path:
    """The sidecar path to write: a suffix of ``fmt``, and no other sidecar next to it."""
    from ota_release.cli.shared import listed, suffix_for_format

    suffix = suffix_for_format(suffixes, ".json" if fmt == "json" else ".yaml")
    if suffix is None:
        raise UsageProblem(
            f"no sidecar suffix in OTA_SIDECAR_SUFFIXES ({listed(suffixes)}) fits a {fmt} "
            f"sidecar: the function reads a name ending in .json as JSON, any other as YAML; "
            f"use --format {'yaml' if fmt == 'json' else 'json'} or add a suffix"
        )
    target = firmware.with_name(firmware.name + suffix)
    others = [
        firmware.with_name(firmware.name + s)
        for s in suffixes
        if s != suffix and firmware.with_name(firmware.name + s).exists()
    ]
    if others:
        raise CommandFailed(
            f"{others[0]} already exists: two sidecars for one firmware file are ambiguous "
            "and the function would refuse both; remove one first"
        )
    if target.exists() and not force:
        raise CommandFailed(f"{target} already exists; pass --force to overwrite it")
    return target
