"""The settings the CLI shares with the function, read by the function's own parser.

Kept apart from ``checks`` (which loads the sidecar and digest code) so that declaring the
options costs nothing when ``ota-release --help`` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ota_release.cli.common import UsageProblem
from ota_release.settings import DEFAULT_SIDECAR_SUFFIXES

F = TypeVar("F", bound=Callable[..., Any])

#: The settings the CLI shares with the function, by variable name.
SHARED_SETTINGS = ("OTA_SIDECAR_SUFFIXES", "OTA_PRODUCT_KEY")
#: Values for the settings the function requires and the CLI never uses, so that the
#: function's parser can be asked about the shared ones alone.
_UNUSED_REQUIRED = {
    "OTA_REGION": "cn-shanghai",
    "OTA_NOTIFY_TOPIC": "ota-release-cli",
    "OTA_MNS_ENDPOINT": "https://ota-release-cli.invalid",
}


@dataclass(frozen=True)
class SharedSettings:
    """What the function would use for the settings the CLI applies too."""

    sidecar_suffixes: tuple[str, ...] = DEFAULT_SIDECAR_SUFFIXES
    product_key: str | None = None


def shared_settings(
    *, sidecar_suffixes: str | None = None, product_key: str | None = None
) -> SharedSettings:
    """Read ``OTA_SIDECAR_SUFFIXES`` / ``OTA_PRODUCT_KEY`` with the function's own parser.

    The values (from an option or the environment variable of the same name) go through
    ``Settings.from_env`` exactly as the function's cold start reads them, so the CLI can
    neither accept a value the function refuses nor read one differently. A refused value
    is a usage problem listing every refused setting with the function's words.
    """
    from ota_release.settings import Settings, SettingsError

    given = {"OTA_SIDECAR_SUFFIXES": sidecar_suffixes, "OTA_PRODUCT_KEY": product_key}
    probe = {**_UNUSED_REQUIRED, **{k: v for k, v in given.items() if v is not None}}
    try:
        settings = Settings.from_env(probe)
    except SettingsError as exc:
        ours = [p for p in exc.problems if any(name in p for name in SHARED_SETTINGS)]
        if not ours:  # the probe itself was refused: a bug here, not the user's input
            raise
        raise UsageProblem(
            "the function would refuse these settings (given as --sidecar-suffixes / "
            "OTA_SIDECAR_SUFFIXES, --product-key / OTA_PRODUCT_KEY): " + "; ".join(ours)
        ) from exc
    return SharedSettings(settings.sidecar_suffixes, settings.product_key)


def shared_settings_options(*, product_key: bool) -> Callable[[F], F]:
    """``--sidecar-suffixes`` (and ``--product-key``): the function's settings, same names."""

    def decorate(func: F) -> F:
        func = click.option(
            "--sidecar-suffixes",
            envvar="OTA_SIDECAR_SUFFIXES",
            metavar="LIST",
            help="The function's OTA_SIDECAR_SUFFIXES: comma-separated sidecar name suffixes "
            f"[env OTA_SIDECAR_SUFFIXES; default {','.join(DEFAULT_SIDECAR_SUFFIXES)}].",
        )(func)
        if product_key:
            func = click.option(
                "--product-key",
                envvar="OTA_PRODUCT_KEY",
                metavar="KEY",
                help="The function's default ProductKey (OTA_PRODUCT_KEY), used when a "
                "sidecar has none [env OTA_PRODUCT_KEY].",
            )(func)
        return func

    return decorate


def suffix_for_format(suffixes: Sequence[str], extension: str) -> str | None:
    """The first configured suffix a sidecar of this format (``.json``/``.yaml``) may use.

    The function reads a sidecar as JSON when its name ends in ``.json`` and as YAML
    otherwise, so a JSON sidecar needs a ``.json`` suffix and a YAML one any other.
    """
    extension = extension.lower()
    if extension == ".json":
        return next((s for s in suffixes if s.lower().endswith(".json")), None)
    preferred = [s for s in suffixes if s.lower().endswith((".yaml", ".yml"))]
    others = [s for s in suffixes if not s.lower().endswith(".json")]
    return next(iter(preferred or others), None)


def listed(suffixes: Sequence[str]) -> str:
    """``.a, .b or .c`` for messages."""
    items = list(suffixes)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" or {items[-1]}"
