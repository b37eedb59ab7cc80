"""A local MNS (Simple Message Queue) topic service speaking the 2015-06-06 XML protocol.

The real ``mns`` SDK (aliyun-mns-sdk) talks to it unchanged: ``Account("http://127.0.0.1:<port>",
ak, sk[, security_token])``. Every request is checked as MNS checks it (signature, Date,
version, Content-MD5, STS token: see :mod:`~localcloud.mns.auth`). Laid out as each
stand-in is:

- :mod:`~localcloud.mns.app`: :class:`LocalMns`, the WSGI app and the Python API tests use;
- :mod:`~localcloud.mns.routes`: method and path -> operation -> handler;
- :mod:`~localcloud.mns.responses`: one handler per operation, the XML bodies they read;
- :mod:`~localcloud.mns.backend`: the topics, their limits and what they received;
- :mod:`~localcloud.mns.errors`: the XML error shape (``MNSServerException`` in the SDK);
- :mod:`~localcloud.mns.protocol`: the version, namespace and response envelopes.

Topics live in memory; what a topic received can be read from Python (:meth:`LocalMns.messages`,
:meth:`LocalMns.wait_for`) or over HTTP at ``GET /_localcloud/topics/<name>/messages`` (JSON,
no signature). :meth:`LocalMns.publish` lets the local FC deliver destination records.
"""

from localcloud.mns.app import LocalMns
from localcloud.mns.backend import (
    MAX_MESSAGE_SIZE,
    MESSAGE_TAG_MAX,
    MIN_TOPIC_MESSAGE_SIZE,
    TOPIC_NAME_PATTERN,
    MnsBackend,
    ReceivedMessage,
)
from localcloud.mns.errors import HOST_ID, MnsError, TopicNotExistError
from localcloud.mns.protocol import MNS_VERSION, MNS_XMLNS

__all__ = [
    "HOST_ID",
    "MAX_MESSAGE_SIZE",
    "MESSAGE_TAG_MAX",
    "MIN_TOPIC_MESSAGE_SIZE",
    "MNS_VERSION",
    "MNS_XMLNS",
    "TOPIC_NAME_PATTERN",
    "LocalMns",
    "MnsBackend",
    "MnsError",
    "ReceivedMessage",
    "TopicNotExistError",
]
