"""The local MNS topics, driven over HTTP by the real aliyun-mns-sdk."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.topic import TopicMessage, TopicMeta
from werkzeug.wrappers import Response

from localcloud.credentials import CredentialStore
from localcloud.mns import MAX_MESSAGE_SIZE, LocalMns, MnsError, TopicNotExistError
from localcloud.server import LocalServer

pytestmark = pytest.mark.integration

AK, SK = "LTAI-mns-test", "mns-test-secret"
STS_AK, STS_SK, STS_TOKEN = "STS.mns-test", "sts-secret", "sts-token-value"
TOPIC = "ota-release-outcomes"


class SwappableApp:
    """One server per module, a fresh LocalMns per test."""

    def __init__(self) -> None:
        self.app: Callable[..., Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None, "no LocalMns installed for this test"
        return self.app(environ, start_response)


@dataclass
class MnsEnv:
    mns: LocalMns
    url: str
    front: SwappableApp

    def account(self, ak: str = AK, sk: str = SK, token: str = "") -> Account:
        return Account(self.url, ak, sk, token)

    def topic(self, ak: str = AK, sk: str = SK, token: str = "") -> Any:
        return self.account(ak, sk, token).get_topic(TOPIC)


@dataclass
class MnsFactory:
    front: SwappableApp
    url: str

    def __call__(self, **options: Any) -> MnsEnv:
        store = CredentialStore()
        store.add(AK, SK)
        store.add(STS_AK, STS_SK, STS_TOKEN)
        mns = LocalMns(store, **options)
        mns.create_topic(TOPIC)
        self.front.app = mns
        return MnsEnv(mns, self.url, self.front)


@pytest.fixture(scope="module")
def mns_server() -> Iterator[tuple[SwappableApp, LocalServer]]:
    front = SwappableApp()
    with LocalServer(front, name="mns-test") as server:
        yield front, server


@pytest.fixture
def make_mns(mns_server: tuple[SwappableApp, LocalServer]) -> Iterator[MnsFactory]:
    front, server = mns_server
    yield MnsFactory(front, server.url)
    front.app = None


@pytest.fixture
def env(make_mns: MnsFactory) -> MnsEnv:
    return make_mns()


def upper_md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest().upper()


def publish_raw(
    env: MnsEnv, body: bytes, content_md5: str, version: str = "2015-06-06"
) -> tuple[int, bytes]:
    """POST a message signed by hand as the MNS signature doc describes (no SDK)."""
    path = f"/topics/{TOPIC}/messages"
    content_type = "text/xml;charset=utf-8"
    date = format_datetime(datetime.now(timezone.utc), usegmt=True)
    to_sign = f"POST\n{content_md5}\n{content_type}\n{date}\nx-mns-version:{version}\n{path}"
    signature = base64.b64encode(hmac.new(SK.encode(), to_sign.encode(), "sha1").digest())
    headers = {
        "Authorization": f"MNS {AK}:{signature.decode()}",
        "Content-MD5": content_md5,
        "Content-Type": content_type,
        "Date": date,
        "x-mns-version": version,
    }
    host, port = env.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def message_xml(text: str, tag: str | None = None) -> bytes:
    tag_element = f"<MessageTag>{tag}</MessageTag>" if tag is not None else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Message xmlns="http://mns.aliyuncs.com/doc/v1/">'
        f"<MessageBody>{text}</MessageBody>{tag_element}</Message>"
    ).encode()


def rfc1864_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


# Publish and read back -------------------------------------------------------------------


def test_published_message_is_kept_with_its_tag_and_body_md5(env: MnsEnv) -> None:
    body = json.dumps({"outcome": "registered", "name": "cam-2.0.0 <beta> & co", "é": 1})

    sent = env.topic().publish_message(TopicMessage(body, "registered"))

    received = env.mns.messages(TOPIC)
    assert [(m.body, m.tag) for m in received] == [(body, "registered")]
    assert sent.message_id == received[0].message_id
    assert sent.message_body_md5 == upper_md5(body) == received[0].body_md5
    assert env.mns.calls["PublishMessage"] == 1


def test_messages_can_be_read_over_http_as_json(env: MnsEnv) -> None:
    env.topic().publish_message(TopicMessage("first", "a"))
    env.topic().publish_message(TopicMessage("second"))

    host, port = env.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", f"/_localcloud/topics/{TOPIC}/messages")
        reply = connection.getresponse()
        payload = json.loads(reply.read())
    finally:
        connection.close()

    assert (reply.status, reply.getheader("Content-Type")) == (200, "application/json")
    assert payload["topic"] == TOPIC
    assert [(m["body"], m["tag"]) for m in payload["messages"]] == [("first", "a"), ("second", "")]
    assert all(m["publish_time"] > 0 for m in payload["messages"])


def test_sts_key_with_its_token_can_publish(env: MnsEnv) -> None:
    env.topic(STS_AK, STS_SK, STS_TOKEN).publish_message(TopicMessage("via sts", "t"))

    assert [m.body for m in env.mns.messages(TOPIC)] == ["via sts"]


def test_body_of_exactly_64_kib_is_accepted_and_one_byte_more_refused(env: MnsEnv) -> None:
    topic = env.topic()
    topic.publish_message(TopicMessage("x" * MAX_MESSAGE_SIZE))

    with pytest.raises(MNSServerException) as caught:
        topic.publish_message(TopicMessage("x" * (MAX_MESSAGE_SIZE + 1)))

    assert caught.value.type == "InvalidArgument"
    assert "65536" in caught.value.message
    assert [len(m.body) for m in env.mns.messages(TOPIC)] == [65536]


def test_size_limit_counts_utf8_bytes_not_characters(env: MnsEnv) -> None:
    with pytest.raises(MNSServerException) as caught:
        env.topic().publish_message(TopicMessage("é" * (MAX_MESSAGE_SIZE // 2 + 1)))

    assert caught.value.type == "InvalidArgument"


# Refusals ---------------------------------------------------------------------------------


def test_publishing_to_a_missing_topic_is_topic_not_exist(env: MnsEnv) -> None:
    with pytest.raises(MNSServerException) as caught:
        env.account().get_topic("no-such-topic").publish_message(TopicMessage("lost"))

    assert caught.value.type == "TopicNotExist"
    assert caught.value.request_id and caught.value.host_id


def test_wrong_secret_is_signature_mismatch(env: MnsEnv) -> None:
    with pytest.raises(MNSServerException) as caught:
        env.topic(sk="not-the-secret").publish_message(TopicMessage("forged"))

    assert caught.value.type == "SignatureDoesNotMatch"
    assert env.mns.messages(TOPIC) == []


def test_unknown_key_is_invalid_access_key_id(env: MnsEnv) -> None:
    with pytest.raises(MNSServerException) as caught:
        env.topic(ak="LTAI-nobody").publish_message(TopicMessage("who"))

    assert caught.value.type == "InvalidAccessKeyId"


@pytest.mark.parametrize("token", ["someone-elses-token", ""])
def test_sts_key_with_wrong_or_missing_token_is_access_denied(env: MnsEnv, token: str) -> None:
    with pytest.raises(MNSServerException) as caught:
        env.topic(STS_AK, STS_SK, token).publish_message(TopicMessage("sts"))

    assert caught.value.type == "AccessDenied"
    assert env.mns.messages(TOPIC) == []


def test_request_from_a_clock_skewed_beyond_15_minutes_is_refused(make_mns: MnsFactory) -> None:
    env = make_mns(now=lambda: datetime.now(timezone.utc) - timedelta(minutes=16))
    body = message_xml("late")

    with pytest.raises(MNSServerException) as caught:
        env.topic().publish_message(TopicMessage("late"))
    status, reply = publish_raw(env, body, rfc1864_md5(body))

    assert caught.value.type == "TimeExpired"
    assert status == 408
    assert b"<Code>TimeExpired</Code>" in reply
    assert env.mns.messages(TOPIC) == []


def test_body_not_matching_its_content_md5_is_refused(env: MnsEnv) -> None:
    # GIVEN a body altered in transit after the SDK computed its Content-MD5
    mns = env.mns

    def tampering(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body.replace(b"pay 10", b"pay 99"))
        return mns(environ, start_response)

    env.front.app = tampering

    with pytest.raises(MNSServerException) as caught:
        env.topic().publish_message(TopicMessage("pay 10"))

    assert caught.value.type == "InvalidDegist"
    assert mns.messages(TOPIC) == []


def test_message_tag_of_16_characters_is_accepted_and_17_refused(env: MnsEnv) -> None:
    # The Python SDK refuses a 17-character tag before sending, so that one goes by hand.
    env.topic().publish_message(TopicMessage("tagged", "t" * 16))
    body = message_xml("tagged", "t" * 17)

    status, reply = publish_raw(env, body, rfc1864_md5(body))

    assert status == 400
    assert b"<Code>InvalidArgument</Code>" in reply and b"MessageTag" in reply
    assert [m.tag for m in env.mns.messages(TOPIC)] == ["t" * 16]


@pytest.mark.parametrize("form", ["rfc1864", "sdk-hex"])
def test_content_md5_is_accepted_as_rfc1864_or_as_the_sdks_base64_of_hex(
    env: MnsEnv, form: str
) -> None:
    # GIVEN a body and its Content-MD5 in one of the two forms clients send
    body = message_xml("checked body")
    digest = hashlib.md5(body, usedforsecurity=False)
    raw = digest.digest() if form == "rfc1864" else digest.hexdigest().encode()

    # WHEN it is published with that header (signed by hand, no SDK)
    status, reply = publish_raw(env, body, base64.b64encode(raw).decode())

    # THEN the message is accepted with 201 and stored
    assert status == 201, reply
    assert [m.body for m in env.mns.messages(TOPIC)] == ["checked body"]


def test_content_md5_in_neither_form_is_invalid_degist(env: MnsEnv) -> None:
    body = message_xml("checked body")
    wrong = base64.b64encode(hashlib.md5(b"other", usedforsecurity=False).digest()).decode()

    status, reply = publish_raw(env, body, wrong)

    assert status == 400
    assert b"<Code>InvalidDegist</Code>" in reply
    assert env.mns.messages(TOPIC) == []


def test_request_without_the_2015_06_06_version_header_is_refused(env: MnsEnv) -> None:
    body = message_xml("old protocol")

    status, reply = publish_raw(env, body, rfc1864_md5(body), version="2014-07-08")

    assert status == 400
    assert b"x-mns-version" in reply
    assert env.mns.messages(TOPIC) == []


# Topic management -------------------------------------------------------------------------


def test_topics_can_be_created_inspected_and_deleted_through_the_sdk(env: MnsEnv) -> None:
    topic = env.account().get_topic("created-by-sdk")

    url = topic.create(TopicMeta())
    again = topic.create(TopicMeta())
    topic.publish_message(TopicMessage("hello"))
    meta = topic.get_attributes()
    topic.delete()

    assert url == again and url.endswith("/topics/created-by-sdk")
    assert (meta.topic_name, meta.message_count, meta.maximum_message_size) == (
        "created-by-sdk",
        1,
        65536,
    )
    assert "created-by-sdk" not in env.mns.topics()


def test_creating_an_existing_topic_with_other_attributes_is_topic_already_exist(
    env: MnsEnv,
) -> None:
    topic = env.account().get_topic(TOPIC)

    same = topic.create(TopicMeta(maximum_message_size=MAX_MESSAGE_SIZE))
    with pytest.raises(MNSServerException) as caught:
        topic.create(TopicMeta(maximum_message_size=2048))

    assert same.endswith(f"/topics/{TOPIC}")
    assert caught.value.type == "TopicAlreadyExist"


@pytest.mark.parametrize("name", ["-starts-with-hyphen", "has_underscore", "x" * 256])
def test_topic_name_outside_the_documented_pattern_is_refused(env: MnsEnv, name: str) -> None:
    with pytest.raises(MNSServerException) as caught:
        env.account().get_topic(name).create(TopicMeta())

    assert caught.value.type == "InvalidTopicName"
    assert name not in env.mns.topics()


@pytest.mark.parametrize("name", ["1starts-with-digit", "x" * 255])
def test_topic_name_may_start_with_a_digit_and_have_255_characters(env: MnsEnv, name: str) -> None:
    env.account().get_topic(name).create(TopicMeta())

    assert name in env.mns.topics()


@pytest.mark.parametrize("size", [1023, 65537])
def test_topic_maximum_message_size_outside_1024_to_65536_is_refused(
    env: MnsEnv, size: int
) -> None:
    with pytest.raises(MNSServerException) as caught:
        env.account().get_topic("sized").create(TopicMeta(maximum_message_size=size))

    assert caught.value.type == "InvalidArgument"
    assert "sized" not in env.mns.topics()


def test_topic_with_a_smaller_size_limit_enforces_it(env: MnsEnv) -> None:
    topic = env.account().get_topic("small")
    topic.create(TopicMeta(maximum_message_size=1024))

    with pytest.raises(MNSServerException) as caught:
        topic.publish_message(TopicMessage("y" * 1025))

    assert caught.value.type == "InvalidArgument"


# Python API used by the local FC, tests and the demo ---------------------------------------


def test_python_publish_delivers_without_a_tag(env: MnsEnv) -> None:
    message = env.mns.publish(TOPIC, '{"requestContext": {}}', None)

    assert env.mns.messages(TOPIC) == [message]
    assert message.tag == ""


def test_python_publish_to_a_missing_topic_raises(env: MnsEnv) -> None:
    with pytest.raises(TopicNotExistError):
        env.mns.publish("absent", "body")
    with pytest.raises(MnsError):
        env.mns.publish(TOPIC, "")


def test_wait_for_returns_once_enough_messages_arrived(env: MnsEnv) -> None:
    publisher = threading.Thread(target=env.mns.publish, args=(TOPIC, "from a thread", "t"))
    publisher.start()

    received = env.mns.wait_for(TOPIC, 1, timeout=10)

    publisher.join()
    assert [m.body for m in received] == ["from a thread"]


def test_wait_for_raises_when_too_few_messages_arrive(env: MnsEnv) -> None:
    env.mns.publish(TOPIC, "only one")

    with pytest.raises(TimeoutError, match="has 1 message"):
        env.mns.wait_for(TOPIC, 2, timeout=0.05)


class TopicDown:
    """A fault hook that makes every publish fail like an MNS outage."""

    def before(self, service: str, operation: str) -> Response | None:
        if (service, operation) != ("mns", "PublishMessage"):
            return None
        xml = (
            '<Error xmlns="http://mns.aliyuncs.com/doc/v1/"><Code>InternalError</Code>'
            "<Message>injected</Message><RequestId>FAULT</RequestId><HostId>local</HostId></Error>"
        )
        return Response(xml, status=503, content_type="text/xml;charset=utf-8")


def test_fault_hook_can_answer_instead_of_the_service(make_mns: MnsFactory) -> None:
    env = make_mns(faults=TopicDown())

    with pytest.raises(MNSServerException) as caught:
        env.topic().publish_message(TopicMessage("dropped"))

    assert (caught.value.type, caught.value.request_id) == ("InternalError", "FAULT")
    assert env.mns.messages(TOPIC) == []
    assert env.mns.calls["PublishMessage"] == 1


def test_reset_empties_topics_but_keeps_them(env: MnsEnv) -> None:
    env.mns.publish(TOPIC, "old")

    env.mns.reset()

    assert env.mns.messages(TOPIC) == []
    assert env.mns.topics() == [TOPIC]
