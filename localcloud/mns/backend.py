"""MNS topics in memory, with the limits MNS applies, and the Python API over them.

Tests, the demo and the local FC read what a topic received through :meth:`MnsBackend.messages`
and :meth:`MnsBackend.wait_for`; :meth:`MnsBackend.publish` lets the local FC deliver
destination records without HTTP, under the same limits as PublishMessage.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from localcloud.mns.errors import MnsError, TopicNotExistError, invalid_argument

#: The largest message body a topic takes by default (and at most): 64 KB, inclusive.
MAX_MESSAGE_SIZE = 65536
MIN_TOPIC_MESSAGE_SIZE = 1024
MESSAGE_TAG_MAX = 16
#: Topic names (CreateTopic reference): letters, digits and hyphens, a letter or digit
#: first, at most 255 characters.
TOPIC_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,254}$")


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as a topic received it."""

    message_id: str
    body: str
    tag: str
    publish_time: int  # milliseconds since the epoch, as MNS reports PublishTime
    body_md5: str  # uppercase hex MD5 of the UTF-8 body, as MNS returns MessageBodyMD5


@dataclass
class Topic:
    """A topic's attributes and what it received."""

    name: str
    create_time: int
    maximum_message_size: int = MAX_MESSAGE_SIZE
    logging_enabled: bool = False
    last_modify_time: int = 0
    messages: list[ReceivedMessage] = field(default_factory=list)


@dataclass(frozen=True)
class TopicInfo:
    """A topic's attributes at one moment (GetTopicAttributes without the URL)."""

    name: str
    create_time: int
    last_modify_time: int
    maximum_message_size: int
    message_count: int
    logging_enabled: bool


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def check_topic_name(name: str) -> None:
    if not TOPIC_NAME_PATTERN.match(name):
        raise MnsError(
            400,
            "InvalidTopicName",
            f"The topic name you provided is invalid: {name!r}. Use letters, digits and "
            "hyphens, a letter or digit first, at most 255 characters.",
        )


def check_max_size(size: int) -> None:
    if not MIN_TOPIC_MESSAGE_SIZE <= size <= MAX_MESSAGE_SIZE:
        raise invalid_argument(
            f"The value of MaximumMessageSize should between {MIN_TOPIC_MESSAGE_SIZE} and "
            f"{MAX_MESSAGE_SIZE} bytes (got {size})."
        )


class MnsBackend:
    """The topics of one account."""

    def __init__(self, *, now: Callable[[], datetime] = utcnow) -> None:
        self.now = now
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._topics: dict[str, Topic] = {}
        self._sequence = 0

    # Topics ----------------------------------------------------------------------------------

    def create_topic(self, name: str, *, maximum_message_size: int = MAX_MESSAGE_SIZE) -> None:
        """Create a topic (no-op if it exists), as the demo and tests set up the account."""
        check_topic_name(name)
        check_max_size(maximum_message_size)
        with self._lock:
            if name not in self._topics:
                stamp = self._epoch_seconds()
                self._topics[name] = Topic(name, stamp, maximum_message_size, False, stamp)

    def declare_topic(self, name: str, maximum_message_size: int | None) -> bool:
        """CreateTopic: True when created; an existing topic with another size is a 409."""
        check_topic_name(name)
        with self._lock:
            existing = self._topics.get(name)
            if existing is not None:
                if (
                    maximum_message_size is not None
                    and maximum_message_size != existing.maximum_message_size
                ):
                    raise MnsError(
                        409,
                        "TopicAlreadyExist",
                        "The topic you want to create already exists with other attributes.",
                    )
                return False
        self.create_topic(name, maximum_message_size=maximum_message_size or MAX_MESSAGE_SIZE)
        return True

    def set_attributes(self, name: str, maximum_message_size: int | None) -> None:
        with self._lock:
            topic = self._topic(name)
            if maximum_message_size is not None:
                topic.maximum_message_size = maximum_message_size
            topic.last_modify_time = self._epoch_seconds()

    def describe(self, name: str) -> TopicInfo:
        with self._lock:
            topic = self._topic(name)
            return TopicInfo(
                name=topic.name,
                create_time=topic.create_time,
                last_modify_time=topic.last_modify_time,
                maximum_message_size=topic.maximum_message_size,
                message_count=len(topic.messages),
                logging_enabled=topic.logging_enabled,
            )

    def delete_topic(self, name: str) -> None:
        with self._lock:
            if self._topics.pop(name, None) is None:
                raise TopicNotExistError(name)

    def topics(self) -> list[str]:
        with self._lock:
            return sorted(self._topics)

    # Messages --------------------------------------------------------------------------------

    def publish(self, topic: str, body: str, tag: str | None = None) -> ReceivedMessage:
        """Store one message under PublishMessage's limits.

        Raises :class:`TopicNotExistError` or :class:`MnsError` (``InvalidArgument``) as the
        HTTP path would answer.
        """
        with self._lock:
            return self._append(topic, body, tag or "")

    def messages(self, topic: str) -> list[ReceivedMessage]:
        """What the topic received, oldest first."""
        with self._lock:
            return list(self._topic(topic).messages)

    def wait_for(self, topic: str, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until the topic holds at least ``count`` messages; raise TimeoutError if not."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._topic(topic).messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    have = len(self._topic(topic).messages)
                    raise TimeoutError(
                        f"topic {topic!r} has {have} message(s), expected {count} "
                        f"within {timeout} s"
                    )
                self._arrived.wait(left)
            return list(self._topic(topic).messages)

    def reset(self) -> None:
        """Empty every topic; topics themselves stay."""
        with self._lock:
            for topic in self._topics.values():
                topic.messages.clear()

    # Internals (callers hold the lock) ---------------------------------------------------------

    def _topic(self, name: str) -> Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise TopicNotExistError(name)
        return topic

    def _append(self, topic_name: str, body: str, tag: str) -> ReceivedMessage:
        topic = self._topic(topic_name)
        raw = body.encode("utf-8")
        if not 1 <= len(raw) <= topic.maximum_message_size:
            raise invalid_argument(
                f"The value of MessageBody should between 1 and {topic.maximum_message_size} "
                f"bytes (got {len(raw)})."
            )
        if len(tag) > MESSAGE_TAG_MAX:
            raise invalid_argument(
                f"The length of MessageTag should be between 1 and {MESSAGE_TAG_MAX} "
                f"(got {len(tag)})."
            )
        self._sequence += 1
        message = ReceivedMessage(
            message_id=f"{uuid.uuid4().hex[:16].upper()}-1-{self._sequence:010X}",
            body=body,
            tag=tag,
            publish_time=int(self.now().timestamp() * 1000),
            body_md5=hashlib.md5(raw).hexdigest().upper(),
        )
        topic.messages.append(message)
        self._arrived.notify_all()
        return message

    def _epoch_seconds(self) -> int:
        return int(self.now().timestamp())
