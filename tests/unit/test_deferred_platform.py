"""The IoT adapter is built by the first IoT call: waiting and rejected releases never pay."""

from __future__ import annotations

import threading

from ota_release.adapters.deferred import DeferredPlatform
from tests.unit.fakes import FakeOtaPlatform


def test_nothing_is_built_until_the_first_call_and_then_once() -> None:
    built: list[FakeOtaPlatform] = []

    def build() -> FakeOtaPlatform:
        built.append(FakeOtaPlatform())
        return built[-1]

    platform = DeferredPlatform(build)
    assert not platform.built and built == []

    threads = [threading.Thread(target=platform.count_packages, args=(None,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert platform.built and len(built) == 1
    assert built[0].count("count_packages") == 8


def test_every_call_reaches_the_built_platform_with_its_arguments() -> None:
    real = FakeOtaPlatform()
    platform = DeferredPlatform(lambda: real)

    ticket = platform.generate_upload_url("bin", "iot-instance")
    platform.find_firmware("cam", "2.0.0", "pk", None)

    assert ticket == real.tickets[-1]
    assert real.count("generate_upload_url") == 1 and real.count("find_firmware") == 1
