"""The ``ota-release`` command line: check, write and upload releases; replay; status;
capacity; prune.

Commands import what they need when they run: ``ota-release --help`` and ``validate``
never load oss2, the IoT SDK or fc2, so the CI check on every pull request stays quick.
"""

from __future__ import annotations

import click

from ota_release.cli.cmd_capacity import capacity
from ota_release.cli.cmd_init import init
from ota_release.cli.cmd_prune import prune
from ota_release.cli.cmd_replay import replay
from ota_release.cli.cmd_status import status
from ota_release.cli.cmd_upload import upload
from ota_release.cli.cmd_validate import validate

__all__ = ["cli", "main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Typical release:
  ota-release init build/cam-2.0.0.bin --version 2.0.0 --product-key a1Cam
  ota-release validate build/cam-2.0.0.bin.ota.json --firmware build/cam-2.0.0.bin
  ota-release upload build/cam-2.0.0.bin --bucket acme-firmware --prefix firmware/acme/ --wait
  ota-release status --name cam-2_0_0 --version 2.0.0
Near the 500-package quota (notifications warn from 90 %):
  ota-release prune --keep 5 --older-than 30d [--yes]
Once per deployment (cap FC instances so OTA_IOT_QPS x cap fits IoT's 10 calls/s):
  ota-release capacity --service ota-release --function create-firmware --max-instances 1


Credentials: --profile (aliyun CLI), else ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET
(/ALIBABA_CLOUD_SECURITY_TOKEN), else the aliyun CLI profile named by
ALIBABA_CLOUD_PROFILE, else its current profile.
Exit status: 0 ok, 1 invalid, failed or (upload --wait) refused, 2 usage error,
3 upload --wait saw no outcome in time. See docs/cli.md.
""",
)
@click.version_option(package_name="ota-release", prog_name="ota-release")
def cli() -> None:
    """Release firmware through the ota-release pipeline (OSS -> FC -> IoT Platform OTA)."""


cli.add_command(validate)
cli.add_command(init)
cli.add_command(upload)
cli.add_command(replay)
cli.add_command(status)
cli.add_command(capacity)
cli.add_command(prune)


def main() -> None:
    """Console-script entry point (``ota-release``)."""
    cli(prog_name="ota-release")


if __name__ == "__main__":
    main()
