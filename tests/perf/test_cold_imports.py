"""What a cold start imports: only what its path needs, checked in fresh interpreters.

These assert on ``sys.modules`` (which modules ran), never on durations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

from localcloud.cloud import LocalCloud
from ota_release.results import final_key, waiting_key

REPO = Path(__file__).resolve().parents[2]


def fresh(code: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter; it prints one JSON object as its last line."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "functions" / "create_firmware"), str(REPO / "src")]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_handler_loads_no_cloud_sdk_and_no_aws_envelopes() -> None:
    loaded = fresh(
        "import sys, json, index\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "print(json.dumps({'roots': sorted(roots), 'envelopes': "
        "'aws_lambda_powertools.utilities.parser.envelopes' in sys.modules}))"
    )
    roots = set(cast("list[str]", loaded["roots"]))
    assert not roots & {"oss2", "mns", "alibabacloud_iot20180120", "alibabacloud_tea_openapi"}
    assert loaded["envelopes"] is False, "BaseEnvelope would build every AWS envelope model"
    assert {"aws_lambda_powertools", "pydantic"} <= roots, "Logger and parser stay in use"


def test_the_oss_adapter_defers_oss2s_encryption_dependencies_until_used() -> None:
    # GIVEN oss2 imported through the adapter
    state = fresh(
        "import sys, json\n"
        "from ota_release.adapters.oss import _oss2\n"
        "oss2 = _oss2()\n"
        "def executed(name):\n"
        "    m = sys.modules.get(name)\n"
        "    return m is not None and type(m).__name__ != '_LazyModule'\n"
        "before = {n: executed(n) for n in ('aliyunsdkcore.client', 'Crypto.PublicKey.RSA')}\n"
        "key = oss2.utils.random_key(16)\n"  # WHEN encryption code runs
        "from oss2.crypto import RsaProvider\n"
        "after = executed('Crypto.Random')\n"
        "print(json.dumps({'before': before, 'key': len(key), 'after': after}))"
    )
    # THEN the heavy modules had not run, and they load normally once needed
    assert state["before"] == {"aliyunsdkcore.client": False, "Crypto.PublicKey.RSA": False}
    assert state["key"] == 16
    assert state["after"] is True


def test_a_plain_import_of_oss2_elsewhere_is_not_made_lazy() -> None:
    # The deferral is scoped to the adapter's own import of oss2.
    state = fresh(
        "import sys, json, oss2\n"
        "import ota_release.adapters.oss as a\n"
        "m = sys.modules['aliyunsdkcore.client']\n"
        "print(json.dumps({'lazy': type(m).__name__ == '_LazyModule', "
        "'finders': [type(f).__name__ for f in sys.meta_path]}))"
    )
    assert state["lazy"] is False
    assert "_DeferredImports" not in cast("list[str]", state["finders"])


def test_publishing_builds_the_topic_without_the_account_factory_and_its_queue_api() -> None:
    # GIVEN the MNS adapter's topic built (no request is sent)
    loaded = fresh(
        "import sys, json\n"
        "from ota_release.adapters import CloudCredentials\n"
        "from ota_release.adapters.mns import MnsNotifier\n"
        "n = MnsNotifier(CloudCredentials('ak', 'sk'), 'http://127.0.0.1:9', 'outcomes')\n"
        "topic = n._get_topic()\n"
        "print(json.dumps({'topic': topic.topic_name, 'modules': sorted(sys.modules)}))"
    )
    modules = set(cast("list[str]", loaded["modules"]))
    # THEN the topic exists, and neither mns.account nor the queue API was imported
    assert loaded["topic"] == "outcomes"
    assert "mns.topic" in modules
    assert not modules & {"mns.account", "mns.queue", "deprecated"}


INVOKE_ONCE = (
    "import sys, json, types, index\n"
    "record = {'eventName': 'ObjectCreated:PutObject', 'eventSource': 'acs:oss',\n"
    "          'eventTime': '2024-01-01T00:00:00.000Z', 'region': 'cn-shanghai',\n"
    "          'oss': {'bucket': {'name': sys.argv[1]},\n"
    "                  'object': {'key': sys.argv[2], 'size': 1}}}\n"
    "ctx = types.SimpleNamespace(request_id='r1', account_id=None, credentials=None,\n"
    "                            function=types.SimpleNamespace(timeout=60))\n"
    "out = json.loads(index.handler(json.dumps({'events': [record]}).encode(), ctx))\n"
    "roots = sorted({m.split('.')[0] for m in sys.modules})\n"
    "print(json.dumps({'outcome': out['results'][0]['outcome'], 'roots': roots}))"
)


@pytest.mark.parametrize(
    ("stored", "outcome"),
    [
        ({"cam-1.0.0.bin": b"fw", "cam-1.0.0.bin.ota.json": b'{"version": "1 0"}'}, "rejected"),
        ({"cam-1.0.0.bin.ota.json": b'{"version": "1.0.0"}'}, "waiting"),
    ],
)
def test_waiting_and_rejected_invocations_never_load_oss2_requests_or_the_iot_sdk(
    stored: dict[str, bytes], outcome: str
) -> None:
    # GIVEN a sidecar (and maybe its firmware) in the local OSS
    with LocalCloud(flavour="fun") as cloud:
        folder = f"{cloud.prefix}imports/{outcome}/"
        for name, data in stored.items():
            cloud.oss.put_object(cloud.bucket, folder + name, data, notify=False)
        assert cloud.fc is not None
        env = cloud.fc.instance_env()
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO / "functions" / "create_firmware"), str(REPO / "src")]
        )
        # WHEN a fresh interpreter imports the handler and takes the sidecar's event
        proc = subprocess.run(
            [sys.executable, "-c", INVOKE_ONCE, cloud.bucket, folder + "cam-1.0.0.bin.ota.json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        # (and its outcome object written, by the same hand-signed requests)
        release_key = folder + "cam-1.0.0.bin"
        stored_at = (final_key if outcome == "rejected" else waiting_key)(
            cloud.results_prefix, release_key
        )
        stored = json.loads(cloud.oss.read_object(cloud.bucket, stored_at))
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    # THEN the outcome was reached, published and stored with the small reads, one PUT
    # and MNS only (and a JSON sidecar needs no YAML parser)
    assert state["outcome"] == outcome == stored["outcome"]
    roots = set(state["roots"])
    assert "mns" in roots, "the outcome is published"
    assert not roots & {"oss2", "requests", "urllib3", "alibabacloud_iot20180120", "yaml"}
