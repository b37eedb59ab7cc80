"""``python -m ota_release.cli``."""

from ota_release.cli import main

main()
