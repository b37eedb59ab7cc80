"""A local OSS that the real oss2 SDK (and Alibaba's other SDKs) can talk to over HTTP.

:class:`LocalOss` is a WSGI application: serve it with ``localcloud.server.LocalServer``
and point ``oss2.Bucket`` at ``http://127.0.0.1:<port>`` with ``region=`` (V4). It behaves
like a bucket created today: the bucket comes from the Host header first
(virtual-hosted style, ``Host: <bucket>.oss-<region>.aliyuncs.com`` or
``<bucket>.127.0.0.1:<port>``, path ``/<key>``) and from the path otherwise (IP endpoints,
``/<bucket>/<key>``); V4 signatures (header and presigned URL) and STS tokens are checked,
and V1 is refused with OSS's 403 (EC 0002-00000080) unless the server was started with
``allow_v1=True`` (``localcloud up --allow-v1``). The one legacy exception is a bucket
created with ``v1_post_form=True``, which accepts the V1 PostObject form that
GenerateOTAUploadURL hands out for the IoT platform's upload bucket. It keeps objects on
disk, answers with OSS's headers and XML errors, and raises the native FC OSS trigger
event for every object it creates. docs/fidelity.md lists each behaviour with its source.

Laid out as each stand-in is:

- :mod:`~localcloud.oss.app`: :class:`LocalOss`, the WSGI app (route, fault seam,
  authentication, bucket ACL) and the Python API tests use;
- :mod:`~localcloud.oss.routes`: Host then path -> bucket and key; resource, method and
  condition -> operation -> handler (a table);
- :mod:`~localcloud.oss.responses`: one handler per operation;
- :mod:`~localcloud.oss.backend`: the account (storage, events, region, clock) and its
  Python API; :mod:`~localcloud.oss.storage`: buckets, objects and uploads on disk;
- :mod:`~localcloud.oss.errors`: the XML error shape and the codes oss2 maps;
- :mod:`~localcloud.oss.auth` (V4/V1 signatures, STS), :mod:`~localcloud.oss.post`
  (PostObject policy and form signature), :mod:`~localcloud.oss.form` (the streaming form
  parser), :mod:`~localcloud.oss.events` (the FC OSS trigger event, delivered off-thread),
  :mod:`~localcloud.oss.request` (a routed request and its body readers),
  :mod:`~localcloud.oss.protocol` (XML and header pieces the handlers share).
"""

from localcloud.oss.app import LocalOss
from localcloud.oss.backend import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, DEFAULT_RULE_ID, OssBackend
from localcloud.oss.errors import OssError
from localcloud.oss.storage import BucketInfo, StoredObject, crc64

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "DEFAULT_RULE_ID",
    "BucketInfo",
    "LocalOss",
    "OssBackend",
    "OssError",
    "StoredObject",
    "crc64",
]
