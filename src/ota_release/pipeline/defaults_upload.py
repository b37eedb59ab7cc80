"""The upload of a folder defaults file: judged on its own, never a reason to re-run a
release (docs/sidecar.md, "Folder defaults")."""

from __future__ import annotations

from ota_release.defaults import check_defaults_document
from ota_release.errors import NotFoundError
from ota_release.notification import ErrorItem, Outcome
from ota_release.pipeline.context import Release, Stop
from ota_release.pipeline.locate import find_trigger
from ota_release.pipeline.sidecar_read import missing
from ota_release.ports import ObjectTooLarge
from ota_release.sidecar import MAX_SIDECAR_BYTES


def check_defaults_upload(r: Release) -> str:
    """An uploaded defaults file, judged: ``rejected`` (raised) naming each bad key, or a
    line for the log. Nothing is released or re-run because of it: the defaults apply to
    the releases whose sidecars are read from now on."""
    trigger = find_trigger(r)
    try:
        read = r.call(
            f"GetObject {r.key}",
            lambda: r.ports.storage.read_small(trigger.bucket, r.key, MAX_SIDECAR_BYTES),
        )
    except NotFoundError as exc:
        raise Stop(Outcome.FAILED, missing(exc, trigger.bucket, r.key)) from exc
    except ObjectTooLarge as exc:
        rule = f"must be at most {MAX_SIDECAR_BYTES} bytes"
        raise Stop(
            Outcome.REJECTED,
            f"the folder defaults {r.key} are too large; no release was re-run",
            [ErrorItem("defaults", rule, f"{trigger.size} bytes")],
        ) from exc
    r.request_ids.add("oss", read.request_id)
    values, errors = check_defaults_document(read.data, r.key)
    if errors:
        raise Stop(
            Outcome.REJECTED,
            f"the folder defaults {r.key} have {len(errors)} problem(s); no release was "
            "re-run, and releases read below this folder are rejected until it is fixed",
            [ErrorItem.of(v) for v in errors],
        )
    keys = ", ".join(values) or "no keys"
    return (
        f"folder defaults {r.key} are valid ({keys}); they apply to releases read from now "
        "on, and none was re-run"
    )
