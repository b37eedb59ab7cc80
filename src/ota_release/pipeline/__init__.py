"""The release pipeline: one uploaded object in, one published outcome out.

``run`` holds the sequence of steps; ``context`` what they share; ``locate``, ``checks``,
``placement`` and ``registry`` the steps; ``quota`` the package count the notification
carries; ``outcome`` turns the end into the notification.
"""

from ota_release.pipeline.context import (
    FC_MAX_EVENT_AGE,
    Checkpoint,
    ReleaseConfig,
    Stop,
    no_checkpoint,
)
from ota_release.pipeline.outcome import Result
from ota_release.pipeline.run import ReleasePipeline

__all__ = [
    "FC_MAX_EVENT_AGE",
    "Checkpoint",
    "ReleaseConfig",
    "ReleasePipeline",
    "Result",
    "Stop",
    "no_checkpoint",
]
