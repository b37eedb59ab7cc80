"""dist/layer.zip and dist/code.zip hold what FC's Python 3.10 needs, and rebuild identically."""

from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scripts import build_dist

ROOT = Path(__file__).resolve().parents[2]
#: Network failures of pip, the only reason these tests may skip.
OFFLINE = re.compile(
    r"NewConnectionError|Temporary failure in name resolution|Network is unreachable"
    r"|ConnectTimeout|ProxyError"
)
#: Third-party top-level modules the handler path imports (ota_release minus its CLI).
HANDLER_IMPORTS = (
    "pydantic",
    "pydantic_core",
    "yaml",
    "aws_lambda_powertools",
    "oss2",
    "crcmod",
    "alibabacloud_iot20180120",
    "alibabacloud_tea_openapi",
    "mns",
    "requests",
)
#: What only tests, the CLI or the local cloud use: never in the layer.
NOT_IN_LAYER = ("pytest", "hypothesis", "werkzeug", "click", "rich", "localcloud", "fc2", "boto3")
_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_x86_64|manylinux(1|2010|2014)_x86_64")
_LEGACY = {"1": (2, 5), "2010": (2, 12), "2014": (2, 17)}


def _build(out: Path) -> build_dist.BuildResult:
    try:
        return build_dist.build(out)
    except build_dist.BuildError as exc:
        if OFFLINE.search(str(exc)):
            pytest.skip(f"pip cannot reach PyPI to fetch the pinned wheels: {str(exc)[:200]}")
        raise


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> build_dist.BuildResult:
    result = _build(tmp_path_factory.mktemp("dist"))
    layer = result.layer
    assert layer is not None
    print(f"\nlayer.zip: {layer.stat().st_size / 2**20:.1f} MiB")
    return result


def _zip(path: Path | None) -> zipfile.ZipFile:
    assert path is not None
    return zipfile.ZipFile(path)


def _wheel_tags(layer: zipfile.ZipFile) -> dict[str, list[str]]:
    return {
        name.split("/")[1]: [
            line.split(":", 1)[1].strip()
            for line in layer.read(name).decode().splitlines()
            if line.startswith("Tag:")
        ]
        for name in layer.namelist()
        if re.fullmatch(r"python/[^/]+\.dist-info/WHEEL", name)
    }


def _glibc(platform: str) -> tuple[int, int] | None:
    match = _MANYLINUX.fullmatch(platform)
    if not match:
        return None
    if match.group(3):
        return _LEGACY[match.group(3)]
    return int(match.group(1)), int(match.group(2))


def test_layer_puts_every_package_under_python_dir(built):
    names = _zip(built.layer).namelist()

    assert names and all(n.startswith("python/") for n in names)


def test_every_native_wheel_targets_cp310_and_a_glibc_fc_provides(built):
    tags = _wheel_tags(_zip(built.layer))
    native = {dist: t for dist, t in tags.items() if not all(x.endswith("-none-any") for x in t)}

    assert native, "expected some native wheels (pydantic_core, PyYAML, cryptography...)"
    for dist, dist_tags in native.items():
        usable = []
        for tag in dist_tags:
            python, abi, platform = tag.split("-")
            glibc = _glibc(platform)
            assert glibc is not None, f"{dist}: platform {platform} is not manylinux x86_64"
            assert (python, abi) == ("cp310", "cp310") or (
                abi == "abi3" and int(python[3:]) <= 310
            ), f"{dist}: {tag} does not load on CPython 3.10"
            usable.append(glibc <= build_dist.TARGET_GLIBC_MAX)
        assert any(usable), (
            f"{dist}: every tag needs glibc newer than {build_dist.TARGET_GLIBC_MAX}"
        )


def test_every_shared_object_is_built_for_cpython310_x86_64(built):
    sos = [n for n in _zip(built.layer).namelist() if n.endswith(".so")]

    assert sos
    bad = [
        n
        for n in sos
        if not (n.endswith(".cpython-310-x86_64-linux-gnu.so") or n.endswith(".abi3.so"))
    ]
    assert bad == []


def test_layer_holds_what_the_handler_imports_and_nothing_test_only(built):
    top = {n.split("/")[1].removesuffix(".py") for n in _zip(built.layer).namelist()}

    assert [m for m in HANDLER_IMPORTS if m not in top] == []
    assert [m for m in NOT_IN_LAYER if m in top] == []
    assert "bin" not in top


def test_crcmod_ships_its_pure_python_fallback_only(built):
    names = _zip(built.layer).namelist()

    assert "python/crcmod/_crcfunpy.py" in names
    assert not [n for n in names if n.startswith("python/crcmod/") and n.endswith(".so")]


def test_code_zip_holds_entry_points_and_library_with_bootstrap_executable(built):
    code = _zip(built.code)
    names = set(code.namelist())
    modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in code.infolist()}

    assert {"index.py", "bootstrap", "runtime_server.py", "ota_release/function.py"} <= names
    assert modes["bootstrap"] == 0o755
    assert modes["index.py"] == 0o644
    assert not [n for n in names if n.startswith(("ota_release/cli/", "localcloud/", "tests/"))]


def test_zip_entries_are_sorted_with_fixed_timestamps(built):
    for path in (built.layer, built.code):
        infos = _zip(path).infolist()
        files = [i.filename for i in infos if not i.is_dir()]
        assert files == sorted(files)
        assert {i.date_time for i in infos} == {build_dist.ZIP_EPOCH}


def test_bytecode_is_either_absent_or_cp310_unchecked_hash(built):
    for path in (built.layer, built.code):
        zf = _zip(path)
        pycs = [n for n in zf.namelist() if n.endswith(".pyc")]
        if not built.compiled:
            assert pycs == []  # no 3.10 here: ship sources rather than useless 3.11 pycs
            continue
        assert pycs and all(".cpython-310." in n for n in pycs)
        header: Any = zf.read(pycs[0])[:8]
        assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, unchecked


def test_building_twice_gives_byte_identical_zips(built, tmp_path):
    again = _build(tmp_path)

    assert build_dist.sha256_of(again.layer) == build_dist.sha256_of(built.layer)  # type: ignore[arg-type]
    assert build_dist.sha256_of(again.code) == build_dist.sha256_of(built.code)  # type: ignore[arg-type]


def test_requirements_are_all_pinned_exactly():
    reqs = build_dist.parse_requirements()
    names = {build_dist._normalise(r.name) for r in reqs}

    assert {"pydantic", "pyyaml", "aws_lambda_powertools", "oss2", "aliyun_mns_sdk"} <= names
    assert {"alibabacloud_iot20180120", "alibabacloud_tea_openapi", "crcmod"} <= names
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", r.version) for r in reqs)
