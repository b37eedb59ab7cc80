"""A local IoT Platform (API version 2018-01-20) serving the OTA package calls over real RPC.

The real SDK (alibabacloud-iot20180120 on alibabacloud-tea-openapi) talks to it unchanged:
``Config(endpoint="127.0.0.1:<port>", protocol="http", ...)``. Laid out as each stand-in is:

- :mod:`~localcloud.iot.app`: :class:`LocalIot`, the WSGI app (the gateway: signatures,
  version, counting, fault seam, throttling) and the Python API tests use;
- :mod:`~localcloud.iot.routes`: the action -> handler table;
- :mod:`~localcloud.iot.responses`: one handler per action (parameters in, data out);
- :mod:`~localcloud.iot.backend`: the account's packages and the rules that need them;
- :mod:`~localcloud.iot.jobs`: the packages' jobs (verifications, upgrade batches);
- :mod:`~localcloud.iot.errors`: the gateway and business error shapes and codes;
- :mod:`~localcloud.iot.throttle`: the per-action QPS window.

The signature checks live in :mod:`localcloud.rpc_auth`, shared with the FC 3.0 API.
"""

from localcloud.iot.app import LocalIot
from localcloud.iot.backend import (
    DEFAULT_OTA_BUCKET,
    STATUS_NO_VERIFY,
    STATUS_UNVERIFIED,
    STATUS_VERIFIED,
    STATUS_VERIFY_FAILED,
    STATUS_VERIFYING,
    IotBackend,
    StoredPackage,
)
from localcloud.iot.errors import HOST_ID, IotCode
from localcloud.iot.jobs import (
    JOB_CANCELED,
    JOB_COMPLETED,
    JOB_IN_PROGRESS,
    JOB_PLANNED,
    JOB_TYPE_UPGRADE,
    JOB_TYPE_VERIFY,
    StoredJob,
)
from localcloud.iot.routes import API_VERSION

__all__ = [
    "API_VERSION",
    "DEFAULT_OTA_BUCKET",
    "HOST_ID",
    "JOB_CANCELED",
    "JOB_COMPLETED",
    "JOB_IN_PROGRESS",
    "JOB_PLANNED",
    "JOB_TYPE_UPGRADE",
    "JOB_TYPE_VERIFY",
    "STATUS_NO_VERIFY",
    "STATUS_UNVERIFIED",
    "STATUS_VERIFIED",
    "STATUS_VERIFYING",
    "STATUS_VERIFY_FAILED",
    "IotBackend",
    "IotCode",
    "LocalIot",
    "StoredJob",
    "StoredPackage",
]
