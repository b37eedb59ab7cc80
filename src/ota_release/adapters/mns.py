"""Notifier on an MNS topic through aliyun-mns-sdk (imported on first use)."""

from __future__ import annotations

from typing import Any

from ota_release.adapters import CloudCredentials
from ota_release.errors import AuthError, PermanentError, PlatformError, TransientError
from ota_release.ports import PublishReceipt

#: MNS error types that no retry can fix: keys, token, signature or permission refused
#: (a deployment problem) ...
AUTH_TYPES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken"}
)
#: ... and the rest (a missing topic, a message MNS cannot take).
PERMANENT_TYPES = AUTH_TYPES | {
    "TopicNotExist",
    "InvalidArgument",
    "MessageBodyTooLarge",
    "MalformedXML",
}


class MnsNotifier:
    """Publishes one message per outcome, with the outcome as MessageTag."""

    def __init__(
        self, credentials: CloudCredentials, endpoint: str, topic: str, timeout: int = 10
    ) -> None:
        self._credentials = credentials
        self._endpoint = endpoint
        self._topic_name = topic
        self._timeout = timeout
        self._topic: Any = None

    def _get_topic(self) -> Any:
        if self._topic is None:
            # mns.account is only a factory for these two, but importing it also loads the
            # queue API and its `deprecated` dependency (~25 ms of every cold start).
            from mns.mns_client import MNSClient
            from mns.topic import Topic

            c = self._credentials
            client = MNSClient(
                self._endpoint,
                c.access_key_id,
                c.access_key_secret,
                security_token=c.security_token or "",
            )
            client.set_connection_timeout(self._timeout)
            self._topic = Topic(self._topic_name, client)
        return self._topic

    def publish(self, body: str, tag: str) -> PublishReceipt:
        from mns.mns_exception import (
            MNSClientNetworkException,
            MNSExceptionBase,
            MNSServerException,
        )
        from mns.topic import TopicMessage

        try:
            result = self._get_topic().publish_message(TopicMessage(body, tag))
        except MNSServerException as exc:
            cls: type[PlatformError] = TransientError
            if exc.type in AUTH_TYPES:
                cls = AuthError
            elif exc.type in PERMANENT_TYPES:
                cls = PermanentError
            raise cls(
                "mns", "PublishMessage", exc.type, exc.message, request_id=exc.req_id
            ) from exc
        except MNSClientNetworkException as exc:
            raise TransientError("mns", "PublishMessage", exc.type, exc.message) from exc
        except MNSExceptionBase as exc:
            raise PermanentError("mns", "PublishMessage", exc.type, exc.message) from exc
        except OSError as exc:
            raise TransientError("mns", "PublishMessage", type(exc).__name__, str(exc)) from exc
        return PublishReceipt(message_id=result.message_id, request_id=None)
