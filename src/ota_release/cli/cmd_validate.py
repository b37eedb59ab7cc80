"""``ota-release validate``: the function's sidecar rules, run before anything is uploaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ota_release.cli.common import EXIT_FAILED, UsageProblem
from ota_release.cli.shared import shared_settings_options

if TYPE_CHECKING:
    from ota_release.cli.checks import ReleaseCheck

EXISTING_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
#: A firmware file, or a multi-file release's folder.
EXISTING_RELEASE = click.Path(exists=True, readable=True, path_type=Path)


@click.command(
    short_help="Check sidecars with the function's own rules.",
    epilog="""\b
Examples:
  ota-release validate firmware/cam-2.0.0.bin.ota.json
  ota-release validate release.yaml --firmware build/cam-2.0.0.bin
  ota-release validate --check-firmware dist/*.ota.json
  ota-release validate --json sidecars/*.ota.yaml > report.json

Exit status: 0 every sidecar is valid, 1 at least one is not, 2 usage error
(unknown option, missing file).
""",
)
@click.argument("sidecars", metavar="SIDECAR...", nargs=-1, required=True, type=EXISTING_FILE)
@click.option(
    "--firmware",
    type=EXISTING_RELEASE,
    help="The firmware file the (single) sidecar describes: its size and digest are checked "
    "too, and the derived name comes from its file name. For a sidecar with files: the "
    "release folder, whose every listed file is checked.",
)
@click.option(
    "--check-firmware",
    is_flag=True,
    help="Also check each sidecar's firmware file (the sidecar path minus its suffix), or "
    "for a sidecar with files every file in its release folder.",
)
@click.option(
    "--defaults-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The folder that stands for the watched prefix: folder defaults "
    "(.ota-defaults.json/.yaml/.yml) are read from it down to each sidecar's folder "
    "(default: the current directory, when the sidecar is below it).",
)
@shared_settings_options(product_key=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report (for CI).")
def validate(
    sidecars: tuple[Path, ...],
    firmware: Path | None,
    check_firmware: bool,
    defaults_root: Path | None,
    product_key: str | None,
    sidecar_suffixes: str | None,
    as_json: bool,
) -> None:
    """Check sidecars with exactly the rules the function applies.

    Every problem is listed at once, each with the field, the rule and the value seen.
    """
    from ota_release.cli.checks import check_release
    from ota_release.cli.common import emit_json
    from ota_release.cli.shared import shared_settings

    if firmware is not None and len(sidecars) != 1:
        raise click.UsageError("--firmware goes with exactly one SIDECAR")
    if firmware is not None and check_firmware:
        raise click.UsageError("use either --firmware or --check-firmware")

    settings = shared_settings(sidecar_suffixes=sidecar_suffixes, product_key=product_key)
    suffixes = settings.sidecar_suffixes
    results = [
        check_release(
            sidecar,
            _firmware_of(sidecar, suffixes) if check_firmware else firmware,
            default_product_key=settings.product_key,
            suffixes=suffixes,
            defaults_root=defaults_root,
        )
        for sidecar in sidecars
    ]
    valid = all(r.ok for r in results)
    if as_json:
        emit_json({"valid": valid, "results": [r.as_dict() for r in results]})
    else:
        _print_results(results)
    if not valid:
        raise click.exceptions.Exit(EXIT_FAILED)


def _firmware_of(sidecar: Path, suffixes: tuple[str, ...]) -> Path:
    """The firmware file a sidecar names (its path minus the sidecar suffix)."""
    from ota_release.cli.checks import sidecar_suffix
    from ota_release.cli.shared import listed

    suffix = sidecar_suffix(sidecar, suffixes)
    if suffix is None:
        raise UsageProblem(
            f"{sidecar}: --check-firmware needs a sidecar named <firmware> plus "
            f"{listed(suffixes)} (OTA_SIDECAR_SUFFIXES)"
        )
    fw = sidecar.with_name(sidecar.name[: -len(suffix)])
    if not fw.exists():
        raise UsageProblem(f"{sidecar}: its firmware file (or release folder) {fw} does not exist")
    return fw


def _print_results(results: list[ReleaseCheck]) -> None:
    from ota_release.cli.common import escape, print_violations, stdout_console

    console = stdout_console()
    for r in results:
        if r.ok:
            assert r.spec is not None
            derived = " (name derived from the file name)" if r.spec.name_derived else ""
            digest = (
                f", {r.digest.size} bytes, {r.digest.sign_method} {r.digest.sign}"
                if r.digest
                else ""
            )
            verify = r.spec.verify
            verifying = f", verification on {len(verify.devices)} device(s)" if verify else ""
            if r.files:
                digest = f", {len(r.files)} files checked"
            console.print(
                f"[green]valid[/green]   {escape(r.sidecar)}: "
                f"{escape(r.spec.name)} {escape(r.spec.version)}{escape(derived)}"
                f"{escape(digest)}{escape(verifying)}"
            )
            if r.defaulted:
                _print_sources(console, r)
        else:
            count = len(r.errors)
            console.print(
                f"[red]invalid[/red] {escape(r.sidecar)}: "
                f"{count} problem{'s' if count != 1 else ''}"
            )
            print_violations(console, r.errors)


def _print_sources(console: Any, r: ReleaseCheck) -> None:
    """Each effective value and the file (or setting) it came from."""
    from ota_release.cli.common import escape

    assert r.spec is not None
    shown = r.spec.model_dump(exclude_none=True)
    for key, source in sorted(r.sources.items()):
        value = shown.get(key)
        if isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False)
        console.print(f"          {escape(key)} = {escape(str(value))}  (from {escape(source)})")
