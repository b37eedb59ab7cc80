"""``ota-release upload``: check locally, then put the firmware and then its sidecar.

Order matters: the sidecar is the half that completes a release. The firmware's own
trigger finds no sidecar yet and the function answers ``waiting``; the sidecar's trigger
then finds both halves and registers the package. A firmware large enough for a multipart
upload raises ``ObjectCreated:CompleteMultipartUpload``, which a trigger may not listen
to; uploading the sidecar last (a PutObject) covers that case too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ota_release.cli.cloud import CloudTarget, credential_options, oss_endpoint_option
from ota_release.cli.common import ByteSize, UsageProblem
from ota_release.cli.shared import shared_settings_options
from ota_release.results import Upload
from ota_release.settings import DEFAULT_RESULTS_PREFIX

if TYPE_CHECKING:
    from ota_release.cli.checks import ReleaseCheck
    from ota_release.digest import Digest
    from ota_release.sidecar import ReleaseSpec

DEFAULT_PREFIX = "firmware/"
#: Seconds ``upload --wait`` waits for the outcome unless --timeout says otherwise.
DEFAULT_WAIT_TIMEOUT = 600.0
DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024
DEFAULT_PART_SIZE = 16 * 1024 * 1024


def normalise_prefix(prefix: str) -> str:
    """``firmware`` -> ``firmware/``; an empty prefix means the bucket's root."""
    prefix = prefix.strip().lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def oss_bucket(target: CloudTarget, bucket: str, *, enable_crc: bool) -> Any:
    """An oss2.Bucket for the target's credentials, signing V4 for the target's region."""
    import oss2

    from ota_release.adapters.oss import oss_bucket as v4_bucket
    from ota_release.adapters.oss_reads import check_region

    if not oss2.utils.is_valid_bucket_name(bucket):
        raise UsageProblem(f"{bucket!r} is not a valid OSS bucket name")
    endpoint = target.oss()
    if not oss2.utils.is_valid_endpoint(endpoint):
        raise UsageProblem(f"{endpoint!r} is not a valid OSS endpoint")
    if not target.region:
        raise UsageProblem(
            "no region for the OSS signature (V4 signs the region into every request, "
            "even with --oss-endpoint): pass --region, set ALIBABA_CLOUD_REGION_ID or "
            "region_id in the aliyun profile"
        )
    try:
        region = check_region(target.region, "--region")
    except ValueError as exc:
        raise UsageProblem(str(exc)) from exc
    return v4_bucket(
        target.credentials,
        endpoint,
        bucket,
        region=region,
        connect_timeout=10,
        enable_crc=enable_crc,
    )


def crc_is_fast() -> bool:
    """oss2's upload CRC check is only affordable with crcmod's C extension."""
    try:
        import crcmod._crcfunext  # noqa: F401
    except ImportError:
        return False
    return True


def find_sidecar(firmware: Path, suffixes: Sequence[str]) -> Path:
    """The one sidecar next to the firmware file; none or several is a usage problem."""
    found = [
        firmware.with_name(firmware.name + s)
        for s in suffixes
        if firmware.with_name(firmware.name + s).is_file()
    ]
    if not found:
        raise UsageProblem(
            f"no sidecar next to {firmware} (looked for "
            + ", ".join(firmware.name + s for s in suffixes)
            + "); write one with `ota-release init` or pass --sidecar"
        )
    if len(found) > 1:
        raise UsageProblem(
            "several sidecars for one firmware file are ambiguous: "
            + ", ".join(str(p) for p in found)
            + "; keep one or pass --sidecar"
        )
    return found[0]


@click.command(
    short_help="Check locally, then upload firmware and sidecar.",
    epilog="""\b
Examples:
  ota-release upload build/cam-2.0.0.bin --bucket acme-firmware --prefix firmware/acme/
  ota-release upload cam.bin --sidecar release.yaml --bucket b --prefix firmware/ \\
      --topic ota-outcomes --json
  ota-release upload cam.bin --bucket b --prefix firmware/ \\
      --oss-endpoint http://127.0.0.1:9100        # against localcloud
  ota-release upload cam.bin --bucket b --prefix firmware/ --wait --timeout 300
  ota-release upload build/cam-2.0.0 --bucket b --prefix firmware/   # a release folder

FIRMWARE may be a multi-file release's folder: its sidecar FOLDER.ota.json lists the
files, which are uploaded under <prefix><folder>/ before the sidecar.

Nothing is uploaded unless the sidecar and the file pass the function's checks.
--wait then waits for this upload's outcome (the function's outcome object under
--results-prefix) and prints it; --json prints the outcome document itself.
Exit status: 0 uploaded (with --wait: created or already_registered), 1 invalid, the
upload failed, or (with --wait) rejected, conflict or failed, 2 usage error,
3 (--wait) no outcome within --timeout.
""",
)
@click.argument("firmware", type=click.Path(exists=True, readable=True, path_type=Path))
@click.option(
    "--sidecar",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="Sidecar file (default: FIRMWARE plus one of the sidecar suffixes). Uploaded as "
    "<prefix><firmware name><its suffix>; any name works if it ends in .json/.yaml/.yml.",
)
@click.option(
    "--bucket", envvar="OTA_BUCKET", required=True, help="The watched bucket [env OTA_BUCKET]."
)
@click.option(
    "--prefix",
    envvar="OTA_PREFIX",
    default=DEFAULT_PREFIX,
    show_default=True,
    help="The watched prefix; a missing trailing / is added [env OTA_PREFIX].",
)
@click.option(
    "--topic",
    envvar="OTA_NOTIFY_TOPIC",
    metavar="NAME",
    help="The function's outcome topic, named in the summary [env OTA_NOTIFY_TOPIC].",
)
@click.option(
    "--multipart-threshold",
    type=ByteSize(),
    default=DEFAULT_MULTIPART_THRESHOLD,
    show_default="64MiB",
    help="Files at least this big go up as a resumable multipart upload.",
)
@click.option(
    "--part-size",
    type=ByteSize(),
    default=DEFAULT_PART_SIZE,
    show_default="16MiB",
    help="Part size for multipart uploads.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="After uploading, wait for this upload's outcome and exit with it "
    "(0 created/already_registered, 1 rejected/conflict/failed, 3 timeout).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help=f"With --wait: give up after this many seconds [default {DEFAULT_WAIT_TIMEOUT:g}].",
)
@click.option(
    "--results-prefix",
    envvar="OTA_RESULTS_PREFIX",
    default=DEFAULT_RESULTS_PREFIX,
    show_default=True,
    help="The function's OTA_RESULTS_PREFIX, where --wait reads the outcome "
    "[env OTA_RESULTS_PREFIX].",
)
@shared_settings_options(product_key=True)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result as JSON (with --wait: the outcome document).",
)
@credential_options
@oss_endpoint_option
def upload(
    firmware: Path,
    sidecar: Path | None,
    bucket: str,
    prefix: str,
    topic: str | None,
    multipart_threshold: int,
    part_size: int,
    wait: bool,
    timeout: float | None,
    results_prefix: str,
    product_key: str | None,
    sidecar_suffixes: str | None,
    as_json: bool,
    profile: str | None,
    region: str | None,
    oss_endpoint: str | None,
) -> None:
    """Validate FIRMWARE and its sidecar locally, then upload both (firmware first)."""
    from ota_release.cli.cloud import resolve_target
    from ota_release.cli.shared import shared_settings

    if timeout is not None and not wait:
        raise click.UsageError("--timeout applies to --wait only")
    settings = shared_settings(sidecar_suffixes=sidecar_suffixes, product_key=product_key)
    suffixes = settings.sidecar_suffixes
    sidecar = sidecar or find_sidecar(firmware, suffixes)
    suffix = _sidecar_suffix(sidecar, suffixes)
    if firmware.is_dir():  # a multi-file release: every listed file, then the sidecar
        folder = _checked_folder(
            firmware, sidecar, normalise_prefix(prefix), (suffix, suffixes), settings, as_json
        )
        waiting = _Wait(timeout, results_prefix, normalise_prefix(prefix)) if wait else None
        target = resolve_target(profile=profile, region=region, oss_endpoint=oss_endpoint)
        sizes = (multipart_threshold, part_size)
        _upload_folder(target, bucket, folder, topic, sizes, waiting, as_json)
        return
    firmware_key, sidecar_key = _keys(firmware, normalise_prefix(prefix), suffix, suffixes)
    if wait:
        _check_results_prefix(results_prefix, normalise_prefix(prefix), firmware_key)
    spec, digest = _checked(
        sidecar, firmware, firmware_key, settings.product_key, suffixes, as_json
    )
    target = resolve_target(profile=profile, region=region, oss_endpoint=oss_endpoint)
    oss, uploaded = _put_both(
        target,
        bucket,
        (firmware_key, firmware, digest.size),
        (sidecar_key, sidecar, suffix),
        multipart_threshold,
        part_size,
    )
    what = _uploaded(bucket, firmware_key, sidecar_key, spec, digest, topic)
    if not wait:
        _report(what, as_json)
        return
    if not as_json:
        _report(what, as_json)
    _wait(target, oss, results_prefix, firmware_key, uploaded, timeout, as_json, what)


@dataclass(frozen=True)
class _Wait:
    """``--wait``'s options, and the upload's prefix (the results prefix must not overlap)."""

    timeout: float | None
    results_prefix: str
    prefix: str


def _upload_folder(
    target: CloudTarget,
    bucket: str,
    folder: _Folder,
    topic: str | None,
    sizes: tuple[int, int],
    waiting: _Wait | None,
    as_json: bool = False,
) -> None:
    """Upload a checked release folder; with ``waiting``, wait for its outcome."""
    if waiting is not None:
        _check_results_prefix(waiting.results_prefix, waiting.prefix, folder.release_key)
    oss, uploaded = _put_all(target, bucket, folder.files, folder.sidecar, *sizes)
    # With --wait --json the outcome document is the one thing printed.
    what = _report_folder(folder, bucket, topic, as_json, quiet=waiting is not None and as_json)
    if waiting is not None:
        _wait(
            target,
            oss,
            waiting.results_prefix,
            folder.release_key,
            uploaded,
            waiting.timeout,
            as_json,
            what,
        )


def _uploaded(
    bucket: str,
    firmware_key: str,
    sidecar_key: str,
    spec: ReleaseSpec,
    digest: Digest,
    topic: str | None,
) -> dict[str, Any]:
    """What was uploaded, as the report (and ``--json``) shows it."""
    return {
        "uploaded": True,
        "bucket": bucket,
        "firmware_key": firmware_key,
        "sidecar_key": sidecar_key,
        "size": digest.size,
        "sign_method": digest.sign_method,
        "sign": digest.sign,
        "name": spec.name,
        "version": spec.version,
        "module": spec.module,
        "product_key": spec.product_key,
        "topic": topic,
    }


def _check_results_prefix(results_prefix: str, prefix: str, firmware_key: str) -> None:
    """Refuse a results prefix the function would refuse, or too long for this key."""
    from ota_release.results import fits

    if not results_prefix.endswith("/") or results_prefix.startswith("/"):
        raise UsageProblem(
            f"--results-prefix {results_prefix!r}: a key prefix ending in '/', not "
            "starting with '/' (the function's OTA_RESULTS_PREFIX)"
        )
    if prefix and (results_prefix.startswith(prefix) or prefix.startswith(results_prefix)):
        raise UsageProblem(
            f"--results-prefix {results_prefix!r} overlaps --prefix {prefix!r}; the "
            "function refuses such an OTA_RESULTS_PREFIX"
        )
    if not fits(results_prefix, firmware_key):
        raise UsageProblem(
            f"{firmware_key!r} is too long for an outcome object under {results_prefix!r} "
            "(OSS keys are at most 1023 bytes): the function writes none, so --wait "
            "cannot be used"
        )


def _wait(
    target: CloudTarget,
    oss: Any,
    results_prefix: str,
    firmware_key: str,
    uploaded: Upload,
    timeout: float | None,
    as_json: bool,
    report: dict[str, Any],
) -> None:
    """Wait for this upload's outcome, print it, exit with its code."""
    from ota_release.cli.cloud import failure
    from ota_release.cli.wait import ProgressLine, finish, oss_reader, wait_for_outcome
    from ota_release.errors import PlatformError
    from ota_release.results import final_key

    limit = timeout if timeout is not None else DEFAULT_WAIT_TIMEOUT
    progress = ProgressLine()
    try:
        waited = wait_for_outcome(
            oss_reader(oss), results_prefix, firmware_key, uploaded, limit, progress=progress
        )
    except PlatformError as exc:
        raise failure(exc, target, "reading the outcome", target.oss()) from exc
    finally:
        progress.close()
    finish(waited, limit, final_key(results_prefix, firmware_key), as_json, report)


def _sidecar_suffix(sidecar: Path, suffixes: tuple[str, ...]) -> str:
    """The suffix the sidecar is stored under: its own, or one that fits its format."""
    from ota_release.cli.shared import listed, suffix_for_format
    from ota_release.pairing import role_of

    role = role_of(sidecar.name, suffixes)
    if role.is_sidecar:
        assert role.suffix is not None
        return role.suffix
    if sidecar.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise UsageProblem(f"{sidecar}: a sidecar must be a .json, .yaml or .yml file")
    fitting = suffix_for_format(suffixes, sidecar.suffix)
    if fitting is None:
        raise UsageProblem(
            f"{sidecar}: no sidecar suffix in OTA_SIDECAR_SUFFIXES ({listed(suffixes)}) "
            f"fits a {sidecar.suffix} file"
        )
    return fitting


def _keys(firmware: Path, prefix: str, suffix: str, suffixes: tuple[str, ...]) -> tuple[str, str]:
    """The two object keys, refused here when the function could never pair them."""
    from ota_release.cli.shared import listed
    from ota_release.pairing import naming_problem, role_of

    firmware_key = prefix + firmware.name
    sidecar_key = firmware_key + suffix
    if role_of(firmware_key, suffixes).is_sidecar:
        raise UsageProblem(
            f"{firmware.name}: a firmware file cannot be named like a sidecar ({listed(suffixes)})"
        )
    # The function judges names with pairing.naming_problem; refuse here what it would.
    for key in (firmware_key, sidecar_key):
        problem = naming_problem(key, suffixes)
        if problem is not None:
            raise UsageProblem(
                f"{problem['field']} {key!r}: {problem['rule']} (got {problem['value']})"
            )
    return firmware_key, sidecar_key


def _checked(
    sidecar: Path,
    firmware: Path,
    firmware_key: str,
    product_key: str | None,
    suffixes: tuple[str, ...],
    as_json: bool,
) -> tuple[ReleaseSpec, Digest]:
    """The release's spec and digest, or exit with every problem the check found."""
    from ota_release.cli.checks import check_release

    check = check_release(
        sidecar,
        firmware,
        firmware_key=firmware_key,
        default_product_key=product_key,
        suffixes=suffixes,
    )
    if not check.ok:
        _refuse(check, f"{sidecar} is invalid", as_json)
    assert check.spec is not None and check.digest is not None
    return check.spec, check.digest


def _put_both(
    target: CloudTarget,
    bucket: str,
    firmware: tuple[str, Path, int],
    sidecar: tuple[str, Path, str],
    multipart_threshold: int,
    part_size: int,
) -> tuple[Any, Upload]:
    """Upload the firmware, then the sidecar (whose arrival completes the pair)."""
    return _put_all(target, bucket, [firmware], sidecar, multipart_threshold, part_size)


def _put_all(
    target: CloudTarget,
    bucket: str,
    files: list[tuple[str, Path, int]],
    sidecar: tuple[str, Path, str],
    multipart_threshold: int,
    part_size: int,
) -> tuple[Any, Upload]:
    """Upload every file, then the sidecar (whose arrival usually completes the release).

    Returns the bucket and what identifies this upload: every ETag and request id OSS
    answered, and OSS's time of the first file's upload (the Date of its answer).
    """
    from ota_release.cli.cloud import failure

    sidecar_key, sidecar_path, suffix = sidecar
    oss = oss_bucket(target, bucket, enable_crc=crc_is_fast())
    sidecar_bytes = sidecar_path.read_bytes()
    content_type = "application/json" if suffix.endswith("json") else "application/yaml"
    try:
        puts = {
            key: _upload_file(oss, key, path, size, multipart_threshold, part_size)
            for key, path, size in files
        }
        puts[sidecar_key] = oss.put_object(
            sidecar_key, sidecar_bytes, headers={"Content-Type": content_type}
        )
    except Exception as exc:
        from ota_release.adapters.oss import classify_oss_error

        raise failure(
            classify_oss_error(exc, "upload"), target, f"uploading to {bucket}", target.oss()
        ) from exc
    etags = {key: put.etag for key, put in puts.items()}
    request_ids = frozenset(put.request_id for put in puts.values() if put.request_id)
    return oss, Upload(etags, request_ids, not_before=_server_time(next(iter(puts.values()))))


def _server_time(result: Any) -> datetime | None:
    """The Date header of an OSS answer (OSS's clock, whole seconds), if it has one."""
    from email.utils import parsedate_to_datetime

    value = (getattr(result, "headers", None) or {}).get("Date")
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _report(what: dict[str, Any], as_json: bool) -> None:
    from ota_release.cli.common import emit_json, escape, stdout_console

    if as_json:
        emit_json(what)
        return
    console = stdout_console()
    bucket, topic = what["bucket"], what["topic"]
    topic_text = f"topic {topic}" if topic else "its outcome topic"
    console.print(
        f"uploaded oss://{escape(bucket)}/{escape(what['firmware_key'])} ({what['size']} bytes)"
    )
    console.print(f"uploaded oss://{escape(bucket)}/{escape(what['sidecar_key'])}")
    extras = ", ".join(
        f"{label} {value}"
        for label, value in (("module", what["module"]), ("product", what["product_key"]))
        if value
    )
    console.print(
        f"the function will register {escape(what['name'])} {escape(what['version'])}"
        f"{' (' + escape(extras) + ')' if extras else ''} and notify {escape(topic_text)}"
    )


def _upload_file(oss: Any, key: str, path: Path, size: int, threshold: int, part_size: int) -> Any:
    """PutObject below the threshold, resumable multipart above it, with a progress bar.

    Returns oss2's answer (its ``etag`` is the object's ETag)."""
    import oss2

    from ota_release.cli.common import byte_progress

    with byte_progress(f"upload {path.name}", size) as progress:

        def advance(consumed: int, total: int | None) -> None:
            progress.set(consumed)

        return oss2.resumable_upload(
            oss,
            key,
            str(path),
            multipart_threshold=threshold,
            part_size=part_size,
            progress_callback=advance,
            num_threads=2,
            headers={"Content-Type": "application/octet-stream"},
        )


def _refuse(check: ReleaseCheck, what: str, as_json: bool) -> NoReturn:
    """Nothing is uploaded: say why (every problem, or the check as JSON) and exit 1."""
    from ota_release.cli.common import (
        EXIT_FAILED,
        emit_json,
        escape,
        print_violations,
        stdout_console,
    )

    if as_json:
        emit_json({"uploaded": False, "check": check.as_dict()})
    else:
        console = stdout_console()
        console.print(f"[red]not uploaded[/red]: {escape(what)}")
        print_violations(console, check.errors)
    raise click.exceptions.Exit(EXIT_FAILED)


@dataclass(frozen=True)
class _Folder:
    """A checked multi-file release: its files' keys, its sidecar's, and its spec."""

    files: list[tuple[str, Path, int]]
    sidecar: tuple[str, Path, str]
    spec: ReleaseSpec

    @property
    def release_key(self) -> str:
        """The key that names the release (its outcome object): the sidecar's stem."""
        key, _, suffix = self.sidecar
        return key[: -len(suffix)]


def _checked_folder(
    folder: Path,
    sidecar: Path,
    prefix: str,
    suffixes: tuple[str, tuple[str, ...]],
    settings: Any,
    as_json: bool,
) -> _Folder:
    """The release folder checked as the function will, or exit with every problem.

    ``suffixes`` is the sidecar's suffix and every configured one.
    """
    from ota_release.cli.checks import check_release
    from ota_release.pairing import naming_problem

    (suffix, configured), stem = suffixes, prefix + folder.name
    check = check_release(
        sidecar, folder, firmware_key=stem, default_product_key=settings.product_key
    )
    if not check.ok:
        _refuse(check, f"{folder} is not a valid release", as_json)
    assert check.spec is not None
    files = [(f"{stem}/{n}", folder / n, d.size) for n, d in check.files.items()]
    for key in [stem + suffix, *(k for k, _, _ in files)]:
        problem = naming_problem(key, configured)
        if problem is not None:
            raise UsageProblem(f"{key!r}: {problem['rule']} (got {problem['value']})")
    return _Folder(files, (stem + suffix, sidecar, suffix), check.spec)


def _report_folder(
    folder: _Folder, bucket: str, topic: str | None, as_json: bool, *, quiet: bool = False
) -> dict[str, Any]:
    """What was uploaded: printed (unless ``quiet``) and returned."""
    from ota_release.cli.common import emit_json, escape, stdout_console

    spec = folder.spec
    what = {
        "uploaded": True,
        "bucket": bucket,
        "sidecar_key": folder.sidecar[0],
        "files": [{"key": k, "size": size} for k, _, size in folder.files],
        "name": spec.name,
        "version": spec.version,
        "module": spec.module,
        "product_key": spec.product_key,
        "topic": topic,
    }
    if quiet:
        return what
    if as_json:
        emit_json(what)
        return what
    console = stdout_console()
    for key, _, size in folder.files:
        console.print(f"uploaded oss://{escape(bucket)}/{escape(key)} ({size} bytes)")
    console.print(f"uploaded oss://{escape(bucket)}/{escape(folder.sidecar[0])}")
    topic_text = f"topic {topic}" if topic else "its outcome topic"
    console.print(
        f"the function will register {escape(spec.name)} {escape(spec.version)} "
        f"({len(folder.files)} files) and notify {escape(topic_text)}"
    )
    return what
