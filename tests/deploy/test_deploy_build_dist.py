"""dist/layer.zip and dist/code.zip hold what FC's Python 3.10 needs, and rebuild identically."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import zipfile
from pathlib import Path, PurePosixPath

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
#: Set to 1 to let these tests skip (loudly) on a machine without CPython 3.10.
ALLOW_NO_PY310 = "OTA_ALLOW_NO_PY310"
#: What a cold start on the "created" path imports: the handler, then the SDK clients.
IMPORT_HANDLER_PATH = (
    "import index, ota_release.function, ota_release.adapters.oss, ota_release.adapters.iot, "
    "ota_release.adapters.mns, oss2, mns.mns_client, aiohttp; "
    "from alibabacloud_iot20180120.client import Client"
)
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


def _require_bytecode(built: build_dist.BuildResult) -> build_dist.TargetPython:
    """The 3.10 that compiled the zips; without one the run says so, it never passes quietly."""
    if built.target_python is None:
        message = (
            f"{build_dist.NO_PYTHON310}: the zips were built WITHOUT bytecode and the "
            "CPython 3.10 checks did not run"
        )
        if os.environ.get(ALLOW_NO_PY310) == "1":
            pytest.skip(f"{message} ({ALLOW_NO_PY310}=1)")
        pytest.fail(f"{message}; install one (pyenv install 3.10) or set {ALLOW_NO_PY310}=1")
    return built.target_python


def test_both_zips_hold_cpython310_unchecked_hash_bytecode_for_every_module(built):
    _require_bytecode(built)
    for path in (built.layer, built.code):
        zf = _zip(path)
        names = set(zf.namelist())
        pycs = sorted(n for n in names if n.endswith(".pyc"))
        assert pycs and all(".cpython-310.pyc" in n for n in pycs)
        for name in pycs:
            flags = int.from_bytes(zf.read(name)[4:8], "little")
            assert flags == 0b01, f"{name}: flags {flags:#b}, want hash-based + unchecked"
        # every module of the zip has its pyc beside it
        sources = [PurePosixPath(n) for n in names if n.endswith(".py")]
        missing = [
            str(src)
            for src in sources
            if str(src.parent / "__pycache__" / f"{src.stem}.cpython-310.pyc").removeprefix("./")
            not in names
        ]
        assert missing == []


def test_manifest_records_the_bytecode_and_matches_the_zips(built):
    target = _require_bytecode(built)
    manifest = json.loads((built.layer.parent / "manifest.json").read_text())

    assert manifest["bytecode"]["compiled"] is True
    assert manifest["bytecode"]["compiled_with"] == f"CPython {target.version}"
    assert manifest["bytecode"]["invalidation_mode"] == "unchecked-hash"
    for label, path in (("layer", built.layer), ("code", built.code)):
        pycs = [n for n in _zip(path).namelist() if n.endswith(".pyc")]
        assert manifest["bytecode"]["pyc_files"][label] == len(pycs)
        assert manifest[label]["sha256"] == build_dist.sha256_of(path)


def test_unpacked_zips_import_the_handler_on_cpython310_from_their_bytecode(built, tmp_path):
    # GIVEN both zips unpacked the way FC lays them out: code at /code, layer at /opt
    target = _require_bytecode(built)
    code, opt = tmp_path / "code", tmp_path / "opt"
    zipfile.ZipFile(built.code).extractall(code)
    zipfile.ZipFile(built.layer).extractall(opt)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.pyc"))

    # WHEN CPython 3.10 imports the handler and the SDKs the "created" path loads
    proc = subprocess.run(
        [target.path, "-s", "-v", "-c", IMPORT_HANDLER_PATH],
        cwd=code,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{code}:{opt / 'python'}"},
        capture_output=True,
        text=True,
        check=False,
    )

    # THEN everything imports, every module of the zips comes from its shipped pyc, and
    # no pyc is rewritten (so none was stale)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = re.findall(r"^# code object from '?([^'\n]+)'?$", proc.stderr, re.MULTILINE)
    ours = [p for p in loaded if p.startswith(str(tmp_path))]
    assert len(ours) > 100  # the handler, ota_release, pydantic, oss2, the IoT SDK, ...
    assert all(p.endswith(".cpython-310.pyc") for p in ours)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.pyc")) == before


def test_building_twice_gives_byte_identical_zips_and_manifest(built, tmp_path):
    again = _build(tmp_path)

    assert build_dist.sha256_of(again.layer) == build_dist.sha256_of(built.layer)  # type: ignore[arg-type]
    assert build_dist.sha256_of(again.code) == build_dist.sha256_of(built.code)  # type: ignore[arg-type]
    assert (tmp_path / "manifest.json").read_bytes() == (
        built.layer.parent / "manifest.json"
    ).read_bytes()
    assert again.compiled == built.compiled


def _fake_python(path: Path, implementation: str, version: str) -> str:
    """An executable answering build_dist's probe as the given interpreter would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    is310 = version.startswith("3.10.")
    path.write_text(f"#!/bin/sh\necho {implementation} {is310} {version}\n")
    path.chmod(0o755)
    return str(path)


def test_target_python_is_found_in_pyenv_versions_newest_patch_first(tmp_path, monkeypatch):
    # GIVEN no python3.10 on PATH and no OTA_BUILD_PYTHON310, but pyenv holds two 3.10s,
    # a release candidate and a 3.11
    root = tmp_path / "pyenv"
    _fake_python(root / "versions" / "3.10.9" / "bin" / "python3.10", "CPython", "3.10.9")
    newest = _fake_python(
        root / "versions" / "3.10.13" / "bin" / "python3.10", "CPython", "3.10.13"
    )
    _fake_python(root / "versions" / "3.10.14rc1" / "bin" / "python3.10", "CPython", "3.10.14")
    _fake_python(root / "versions" / "3.11.7" / "bin" / "python3.11", "CPython", "3.11.7")
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("OTA_BUILD_PYTHON310", raising=False)

    # THEN the newest 3.10 release is used
    assert build_dist.find_target_python() == build_dist.TargetPython(newest, "3.10.13", "pyenv")


def test_target_python_prefers_the_variable_and_rejects_what_is_not_cpython310(
    tmp_path, monkeypatch
):
    root = tmp_path / "pyenv"
    _fake_python(root / "versions" / "3.10.13" / "bin" / "python3.10", "CPython", "3.10.13")
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    chosen = _fake_python(tmp_path / "mine" / "python", "CPython", "3.10.5")
    monkeypatch.setenv("OTA_BUILD_PYTHON310", chosen)
    assert build_dist.find_target_python() == build_dist.TargetPython(
        chosen, "3.10.5", "OTA_BUILD_PYTHON310"
    )

    # a PyPy 3.10 or a CPython 3.11 named in the variable is passed over
    for impl, version in (("PyPy", "3.10.14"), ("CPython", "3.11.7")):
        monkeypatch.setenv(
            "OTA_BUILD_PYTHON310", _fake_python(tmp_path / impl / version, impl, version)
        )
        found = build_dist.find_target_python()
        assert found is not None and found.found_via == "pyenv"

    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "nothing"))
    assert build_dist.find_target_python() is None


def test_requirements_are_all_pinned_exactly():
    reqs = build_dist.parse_requirements()
    names = {build_dist._normalise(r.name) for r in reqs}

    assert {"pydantic", "pyyaml", "aws_lambda_powertools", "oss2", "aliyun_mns_sdk"} <= names
    assert {"alibabacloud_iot20180120", "alibabacloud_tea_openapi", "crcmod"} <= names
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", r.version) for r in reqs)
