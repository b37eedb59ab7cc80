"""The function's handler with crash points: test machinery, never shipped.

The local FC runs this handler instead of the function's own (``index.handler``) when the
instance environment sets ``OTA_FAULT_CRASH_AT`` (docs/reliability.md, "Crash points").
It reads the crash points once per instance process and passes their ``reach`` to
:func:`ota_release.function.handle_json` as the pipeline's checkpoint, which is all the
function itself knows about them: a ``checkpoint`` may be injected, and is a no-op
otherwise. ``index.handler`` is a one-line call of the same ``handle_json``.
"""

from __future__ import annotations

import os
from typing import Any

from localcloud.faults import CrashPoints
from ota_release.function import handle_json

_crash_points = CrashPoints.from_env(os.environ)


def handler(event: bytes, context: Any) -> str:
    """``index.handler``, with the crash points as the release's checkpoint."""
    if _crash_points is None:
        return handle_json(event, context)
    return handle_json(event, context, checkpoint=_crash_points.reach)
