"""All four stand-ins wired together, as one Alibaba Cloud account on 127.0.0.1.

The local FC reads the function from the flavour's own deploy file (``template.yml`` for
"fun", ``s.yaml`` for "s"); the function's endpoints are
overridden to point at the local services, so the deployed configuration is exercised
with only the addresses changed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from localcloud.credentials import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    CredentialStore,
    default_store,
)
from localcloud.fc import Flavour, LocalFunctionCompute
from localcloud.fc.s_yaml import load_s_yaml_spec
from localcloud.fc.template import FunctionSpec, load_function_spec, mns_topic_from_arn
from localcloud.iot import LocalIot
from localcloud.mns import LocalMns
from localcloud.oss import LocalOss
from localcloud.server import LocalServer

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yml"
S_YAML = REPO_ROOT / "s.yaml"
CODE_DIR = REPO_ROOT / "functions" / "create_firmware"
SRC_DIR = REPO_ROOT / "src"
REGION = "cn-shanghai"
ACCOUNT_ID = "1234567890123456"
DEFAULT_BUCKET = "firmware-bucket"


@dataclass(frozen=True)
class Endpoints:
    oss: str
    iot: str  # host:port, as the Tea SDK wants it
    mns: str
    fc: str


class LocalCloud:
    """OSS, IoT Platform, MNS and FC on loopback ports, wired like one account.

    Use as a context manager; everything it started is stopped on exit, including the
    function's instance processes, and its data directory is removed.
    """

    def __init__(
        self,
        *,
        flavour: Flavour = "fun",
        template: Path | None = None,
        parameters: Mapping[str, Any] | None = None,
        data_dir: Path | None = None,
        credentials: CredentialStore | None = None,
        max_instances: int = 4,
        instance_concurrency: int | None = None,
        iot_qps: int | None = 10,
        env_overrides: Mapping[str, str] | None = None,
        faults: Any = None,
        ports: Mapping[str, int] | None = None,
        allow_v1: bool = False,
    ) -> None:
        self.flavour: Flavour = flavour
        # Each flavour runs the function as its own deploy file describes it.
        self.template = template or (S_YAML if flavour == "s" else TEMPLATE)
        self.parameters = {"BucketName": DEFAULT_BUCKET, **dict(parameters or {})}
        self._own_data_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="localcloud-"))
        self.credentials = credentials or default_store()
        self.max_instances = max_instances
        self.instance_concurrency = instance_concurrency  # None: the template's value
        self.iot_qps = iot_qps
        self.env_overrides = dict(env_overrides or {})
        self.faults = faults
        self.ports = dict(ports or {})
        self.spec: FunctionSpec = (
            load_s_yaml_spec(self.template, self.parameters, account_id=ACCOUNT_ID)
            if flavour == "s"
            else load_function_spec(
                self.template, self.parameters, region=REGION, account_id=ACCOUNT_ID
            )
        )

        self.oss = LocalOss(
            self.data_dir / "oss",
            self.credentials,
            region=REGION,
            account_id=ACCOUNT_ID,
            faults=faults,
            allow_v1=allow_v1,
        )
        self.mns = LocalMns(self.credentials, faults=faults)
        self.iot = LocalIot(self.credentials, self.oss, qps=iot_qps, faults=faults)
        self._servers: list[LocalServer] = []
        self.fc: LocalFunctionCompute | None = None
        self._unsubscribe: Any = None

    # Lifecycle -----------------------------------------------------------------------

    def start(self) -> LocalCloud:
        try:
            oss_srv = self._serve(self.oss, "oss")
            self.oss.base_url = oss_srv.url
            self.iot.oss_base_url = oss_srv.url
            # The IoT platform's own upload bucket: GenerateOTAUploadURL (API doc 147310)
            # hands out a V1 PostObject form for it, so it is a legacy bucket for that form.
            self.oss.create_bucket(self.iot.ota_bucket, v1_post_form=True)
            iot_srv = self._serve(self.iot, "iot")
            mns_srv = self._serve(self.mns, "mns")
            for bucket in {t.bucket for t in self.spec.triggers}:
                self.oss.create_bucket(bucket)
            for topic in self.topics():
                self.mns.create_topic(topic)
            env = {
                "OTA_OSS_ENDPOINT": oss_srv.url,
                "OTA_OSS_PUBLIC_ENDPOINT": oss_srv.url,
                "OTA_IOT_ENDPOINT": f"127.0.0.1:{iot_srv.port}",
                "OTA_IOT_PROTOCOL": "http",
                "OTA_MNS_ENDPOINT": mns_srv.url,
                "OTA_REGION": REGION,
                "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
                **self.env_overrides,
            }
            self.fc = LocalFunctionCompute(
                self.spec,
                code_dir=CODE_DIR,
                flavour=self.flavour,
                credentials=self.credentials,
                env_overrides=env,
                extra_pythonpath=[SRC_DIR],
                destination_sink=self.mns.publish,
                max_instances=self.max_instances,
                instance_concurrency=self.instance_concurrency,
                account_id=ACCOUNT_ID,
                region=REGION,
                log_dir=self.data_dir / "fc-logs",
                faults=self.faults,
                api_port=self.ports.get("fc", 0),
            )
            self.fc.start()
            self._unsubscribe = self.oss.subscribe(self.fc.on_oss_event)
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self, app: Any, name: str) -> LocalServer:
        server = LocalServer(app, port=self.ports.get(name, 0), name=f"local-{name}").start()
        self._servers.append(server)
        return server

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.fc is not None:
            self.fc.stop()
            self.fc = None
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        self.oss.close()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Facts for users -----------------------------------------------------------------

    @property
    def endpoints(self) -> Endpoints:
        oss, iot, mns = self._servers[0], self._servers[1], self._servers[2]
        assert self.fc is not None
        return Endpoints(oss=oss.url, iot=f"127.0.0.1:{iot.port}", mns=mns.url, fc=self.fc.api_url)

    @property
    def bucket(self) -> str:
        return self.spec.triggers[0].bucket if self.spec.triggers else DEFAULT_BUCKET

    @property
    def prefix(self) -> str:
        return self.spec.triggers[0].prefix if self.spec.triggers else ""

    @property
    def results_prefix(self) -> str:
        """Where the function writes outcome objects (its OTA_RESULTS_PREFIX)."""
        return str(self.spec.env.get("OTA_RESULTS_PREFIX", ""))

    @property
    def notify_topic(self) -> str:
        return str(self.spec.env.get("OTA_NOTIFY_TOPIC", "ota-release-notifications"))

    @property
    def failure_topic(self) -> str | None:
        return mns_topic_from_arn(self.spec.on_failure) if self.spec.on_failure else None

    def topics(self) -> list[str]:
        names = [self.notify_topic]
        if self.failure_topic and self.failure_topic not in names:
            names.append(self.failure_topic)
        return names

    def client_env(self) -> dict[str, str]:
        """Variables that point the SDKs, the CLI and the function at this local cloud."""
        e = self.endpoints
        return {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ACCESS_KEY_SECRET,
            "ALIBABA_CLOUD_REGION_ID": REGION,
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "OTA_OSS_ENDPOINT": e.oss,
            "OTA_IOT_ENDPOINT": e.iot,
            "OTA_IOT_PROTOCOL": "http",
            "OTA_MNS_ENDPOINT": e.mns,
            "OTA_FC_ENDPOINT": e.fc,
            "OTA_FC_SERVICE": self.spec.service,
            "OTA_FC_FUNCTION": self.spec.name,
            "OTA_ACCOUNT_ID": ACCOUNT_ID,
            "OTA_BUCKET": self.bucket,
            "OTA_PREFIX": self.prefix,
            "OTA_RESULTS_PREFIX": self.results_prefix,
            "OTA_NOTIFY_TOPIC": self.notify_topic,
        }

    def sdk_bucket(self, bucket: str | None = None) -> Any:
        """An oss2 Bucket on the local OSS, signing V4 as a user's own code would.

        The local OSS refuses V1 (as OSS does for a bucket created today), so every
        client the demo, the tests and the tools use signs V4: ``oss2.AuthV4`` with the
        account's key and ``region=``.
        """
        import oss2

        return oss2.Bucket(
            oss2.AuthV4(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
            self.endpoints.oss,
            bucket or self.bucket,
            region=REGION,
        )

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until OSS has delivered its notifications and FC has finished them all."""
        if not self.oss.drain(timeout):
            return False
        return self.fc.wait_idle(timeout) if self.fc else True
