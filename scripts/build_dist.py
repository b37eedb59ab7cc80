#!/usr/bin/env python3
"""Build the deployable artefacts: ``dist/layer.zip`` and ``dist/code.zip``.

Why a script rather than ``zip -r``: Function Compute runs the code on CPython 3.10 on
Debian (glibc 2.24 for the ``custom`` runtime, 2.28 for ``custom.debian10``), while we
build on whatever the developer has. The layer must therefore hold wheels chosen for
*that* interpreter and platform, not the build host's, and both zips must be
reproducible so that a redeploy of unchanged inputs is a no-op and a reviewer can
verify an artefact by its sha256.

Usage::

    python scripts/build_dist.py                 # build both zips into dist/
    python scripts/build_dist.py --check-reproducible   # build twice, compare sha256
    python scripts/build_dist.py --lock          # re-resolve layers/requirements.txt

Layout produced:

- ``layer.zip``: ``python/<packages>`` (FC mounts it at /opt, so /opt/python is on the
  path of the built-in Python runtimes; ``bootstrap`` adds it for the custom runtime).
- ``code.zip``: ``index.py``, ``bootstrap`` (mode 755), ``runtime_server.py`` and
  ``ota_release/`` copied from ``src/``.

Pinned inputs live in ``layers/requirements.txt``. A trailing ``# build: sdist`` marks a
pure-Python package PyPI ships only as an sdist (built here into a py3-none-any wheel);
``# build: pure-fallback`` marks crcmod, whose C extension cannot be cross-built for
cp310/manylinux without that interpreter, so its pure-Python modules are shipped (see
layers/README.md for what that costs and why the function does not rely on OSS CRC).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "layers" / "requirements.txt"
REQUIREMENTS_IN = ROOT / "layers" / "requirements.in"
FUNCTION_DIR = ROOT / "functions" / "create_firmware"
LIBRARY_DIR = ROOT / "src" / "ota_release"
DEFAULT_OUT = ROOT / "dist"
DEFAULT_CACHE = ROOT / "build" / "wheelhouse"

#: The interpreter FC runs: python3.10 built-in runtime, /var/fc/lang/python3.10 in
#: custom.debian10, or the official Python310 layer (/opt/python3.10) in ``custom``.
TARGET_PYTHON_VERSION = "3.10"
TARGET_ABI = "cp310"
#: manylinux2014 == manylinux_2_17; pip also accepts every older manylinux tag for these.
#: Nothing newer: the ``custom`` runtime is Debian 9 with glibc 2.24, so a
#: manylinux_2_28 wheel would load on custom.debian10 but fail on ``custom``.
TARGET_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64")
#: Highest glibc any shipped native extension may require (tests check the wheel tags).
TARGET_GLIBC_MAX = (2, 24)
#: Top-level distribution names pip may leave in the layer that the function never uses.
STRIP_DIRS = ("bin",)
#: Zip entries get this timestamp (the earliest a zip can store), so rebuilding the same
#: inputs yields the same bytes whatever the files' mtimes are.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755
#: Files of the function package that must be executable (FC starts ``bootstrap`` itself).
EXECUTABLES = frozenset({"bootstrap"})
CODE_FILES = ("index.py", "bootstrap", "runtime_server.py")
#: Parts of ``ota_release`` the function never imports: the operator CLI needs click/rich,
#: which the layer deliberately does not carry.
CODE_EXCLUDE = ("cli", "__pycache__", "*.pyc")

_REQ_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;#]+)\s*(?:#\s*build:\s*(?P<mode>[\w-]+))?"
)


class BuildError(RuntimeError):
    """The build cannot produce a correct artefact; the message says what to fix."""


@dataclass(frozen=True)
class Requirement:
    """One pinned runtime distribution of the layer and how to obtain its wheel."""

    name: str
    version: str
    mode: str  # "wheel" | "sdist" | "pure-fallback"

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


def parse_requirements(path: Path = REQUIREMENTS) -> list[Requirement]:
    """Read the pinned requirements; every line must be ``name==version``."""
    reqs: list[Requirement] = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _REQ_LINE.match(line)
        if not match:
            raise BuildError(f"{path}:{lineno}: expected 'name==version', got {raw!r}")
        mode = match.group("mode") or "wheel"
        if mode not in ("wheel", "sdist", "pure-fallback"):
            raise BuildError(f"{path}:{lineno}: unknown build mode {mode!r}")
        reqs.append(Requirement(match.group("name"), match.group("version"), mode))
    return reqs


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise BuildError(f"pip failed ({' '.join(args[:2])}...):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _target_args() -> list[str]:
    args = ["--only-binary=:all:", "--implementation", "cp", "--abi", TARGET_ABI]
    args += ["--python-version", TARGET_PYTHON_VERSION]
    for plat in TARGET_PLATFORMS:
        args += ["--platform", plat]
    return args


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _wheel_in(cache: Path, req: Requirement) -> Path | None:
    for candidate in sorted(cache.glob("*.whl")):
        parts = candidate.name.split("-")
        if _normalise(parts[0]) == _normalise(req.name) and parts[1] == req.version:
            return candidate
    return None


def _record_line(arcname: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [arcname, f"sha256={digest}", str(len(data))]


def build_pure_fallback_wheel(req: Requirement, cache: Path) -> Path:
    """Wrap the pure-Python modules of an sdist with an optional C extension in a wheel.

    Only crcmod needs this: its extension cannot be compiled for cp310 here, and its
    package falls back to ``_crcfunpy`` when ``_crcfunext`` is missing.
    """
    with tempfile.TemporaryDirectory() as tmp:
        _pip("download", "--no-deps", "--no-binary=:all:", "-d", tmp, req.spec)
        sdists = list(Path(tmp).glob("*.tar.gz"))
        if len(sdists) != 1:
            raise BuildError(f"expected one sdist for {req.spec}, got {sdists}")
        files: dict[str, bytes] = {}
        with tarfile.open(sdists[0]) as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                # crcmod keeps Python 3 sources in <sdist>/python3/<package>/; tests omitted.
                if len(parts) == 4 and parts[1] == "python3" and parts[3].endswith(".py"):
                    if parts[3] == "test.py":
                        continue
                    handle = tar.extractfile(member)
                    if handle is not None:
                        files[f"{parts[2]}/{parts[3]}"] = handle.read()
    if not files:
        raise BuildError(f"{req.spec}: no python3/ sources found in the sdist")
    dist_info = f"{_normalise(req.name)}-{req.version}.dist-info"
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {req.name}\nVersion: {req.version}\n"
        "Summary: pure-Python build (C extension omitted; see layers/README.md)\n"
    ).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: ota-release build_dist\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n"
    )
    rows = [_record_line(name, data) for name, data in sorted(files.items())]
    rows.append([f"{dist_info}/RECORD", "", ""])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    files[f"{dist_info}/RECORD"] = buf.getvalue().encode()
    out = cache / f"{_normalise(req.name)}-{req.version}-py3-none-any.whl"
    _write_zip(out, ((name, data, FILE_MODE) for name, data in sorted(files.items())))
    return out


def fill_wheelhouse(reqs: list[Requirement], cache: Path) -> None:
    """Put a target-compatible wheel for every requirement into ``cache`` (kept between builds)."""
    cache.mkdir(parents=True, exist_ok=True)
    missing = [r for r in reqs if _wheel_in(cache, r) is None]
    binary = [r.spec for r in missing if r.mode == "wheel"]
    if binary:
        _pip("download", "--no-deps", *_target_args(), "-d", str(cache), *binary)
    for req in missing:
        if req.mode == "sdist":
            _pip("wheel", "--no-deps", "--no-binary=:all:", "-w", str(cache), req.spec)
            built = _wheel_in(cache, req)
            if built is None or not built.name.endswith(
                ("-py3-none-any.whl", "-py2.py3-none-any.whl")
            ):
                raise BuildError(f"{req.spec} is marked 'sdist' but did not build a pure wheel")
        elif req.mode == "pure-fallback":
            build_pure_fallback_wheel(req, cache)


def install_layer(reqs: list[Requirement], cache: Path, staging: Path) -> Path:
    """Install the pinned wheels for the target into ``staging/python``; return that dir."""
    site = staging / "python"
    specs = [r.spec for r in reqs]
    _pip(
        "install",
        "--no-deps",
        "--no-index",
        "--no-compile",
        "--find-links",
        str(cache),
        "--target",
        str(site),
        *_target_args(),
        *specs,
    )
    for name in STRIP_DIRS:
        shutil.rmtree(site / name, ignore_errors=True)
    for cache_dir in list(site.rglob("__pycache__")):
        shutil.rmtree(cache_dir, ignore_errors=True)
    return site


#: Where pyenv keeps its interpreters when ``PYENV_ROOT`` is unset and ``pyenv`` is not on PATH.
DEFAULT_PYENV_ROOT = Path.home() / ".pyenv"
#: Tells whoever reads the manifest how the pycs were written (see compile_tree).
INVALIDATION_MODE = "unchecked-hash"
NO_PYTHON310 = (
    "no CPython 3.10 found (looked at --target-python, $OTA_BUILD_PYTHON310, python3.10 "
    "on PATH and pyenv's versions/3.10.*)"
)


@dataclass(frozen=True)
class TargetPython:
    """A CPython 3.10 found on this machine, and where it was found."""

    path: str
    version: str  # e.g. "3.10.13"
    found_via: str  # "--target-python" | "OTA_BUILD_PYTHON310" | "PATH" | "pyenv"


def _pyenv_root() -> Path:
    root = os.environ.get("PYENV_ROOT")
    if root:
        return Path(root)
    pyenv = shutil.which("pyenv")
    if pyenv:
        proc = subprocess.run(  # noqa: S603
            [pyenv, "root"], capture_output=True, text=True, check=False
        )
        if proc.returncode == 0 and proc.stdout.strip():
            return Path(proc.stdout.strip())
    return DEFAULT_PYENV_ROOT


def _pyenv_candidates() -> list[str]:
    """pyenv's CPython 3.10 builds, newest patch release first."""
    found: list[tuple[tuple[int, ...], str]] = []
    versions = _pyenv_root() / "versions"
    for entry in versions.glob("3.10.*") if versions.is_dir() else ():
        if not re.fullmatch(r"3\.10\.\d+", entry.name):
            continue  # skip 3.10.0rc1, 3.10-dev and virtualenvs named like a version
        python = entry / "bin" / "python3.10"
        if python.is_file():
            found.append((tuple(int(p) for p in entry.name.split(".")), str(python)))
    return [path for _, path in sorted(found, reverse=True)]


def _probe(candidate: str) -> str | None:
    """The full version of ``candidate`` if it runs and is CPython 3.10, else None."""
    try:
        proc = subprocess.run(  # noqa: S603
            [
                candidate,
                "-c",
                "import platform, sys; "
                "print(platform.python_implementation(), sys.version_info[:2] == (3, 10), "
                "platform.python_version())",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    fields = proc.stdout.split()
    if proc.returncode == 0 and fields[:2] == ["CPython", "True"] and len(fields) == 3:
        return fields[2]
    return None


def find_target_python(explicit: str | None = None) -> TargetPython | None:
    """A CPython 3.10 to byte-compile (and test) with, if this machine has one.

    Looked for, first match wins: ``--target-python``, ``$OTA_BUILD_PYTHON310``,
    ``python3.10`` on PATH, then pyenv's versions (``$(pyenv root)/versions/3.10.*``).
    """
    candidates: list[tuple[str | None, str]] = [
        (explicit, "--target-python"),
        (os.environ.get("OTA_BUILD_PYTHON310"), "OTA_BUILD_PYTHON310"),
        (shutil.which("python3.10"), "PATH"),
    ]
    candidates += [(path, "pyenv") for path in _pyenv_candidates()]
    for candidate, via in candidates:
        if not candidate:
            continue
        version = _probe(candidate)
        if version is not None:
            return TargetPython(candidate, version, via)
    return None


def compile_tree(python: str, tree: Path) -> int:
    """Byte-compile ``tree`` for 3.10 with hash-based pycs; return how many were written.

    Timestamp pycs go stale once zipped (2-second DOS times, see PLATFORM_NOTES) and when
    FC unpacks a zip with new mtimes; ``unchecked-hash`` pycs are used as they are
    without reading the source's mtime or hash, which is right for read-only code. For
    identical bytes on every build: one process in a fixed order (marshal output depends
    on the compiling process's state), a fixed hash seed (frozenset constants are
    written in hash order), and a fixed recorded path (``-d``; the import system puts
    the real path back into ``co_filename`` when it loads a pyc next to its source).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"
    proc = subprocess.run(  # noqa: S603
        [
            python,
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            INVALIDATION_MODE,
            "-d",
            "",
            str(tree),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        raise BuildError(f"compileall failed:\n{proc.stdout}\n{proc.stderr}")
    return sum(1 for _ in tree.rglob("*.cpython-310.pyc"))


def _walk(tree: Path, prefix: str = "") -> Iterator[tuple[str, Path]]:
    for path in sorted(tree.rglob("*")):
        if path.is_file():
            yield prefix + path.relative_to(tree).as_posix(), path


def _write_zip(out: Path, entries: Iterable[tuple[str, bytes, int]]) -> None:
    """Write a zip whose bytes depend only on entry names, contents and modes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    items = sorted(entries, key=lambda e: e[0])
    dirs = sorted(
        {"/".join(n.split("/")[:i]) + "/" for n, _, _ in items for i in range(1, n.count("/") + 1)}
    )
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in dirs:
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.external_attr = (stat.S_IFDIR | DIR_MODE) << 16 | 0x10
            info.create_system = 3
            zf.writestr(info, b"")
        for name, data, mode in items:
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)


def _zip_tree(out: Path, tree: Path) -> None:
    _write_zip(
        out,
        (
            (name, path.read_bytes(), EXEC_MODE if name in EXECUTABLES else FILE_MODE)
            for name, path in _walk(tree)
        ),
    )


def stage_code(staging: Path) -> Path:
    """Copy the function entry points and the ``ota_release`` library into one tree."""
    code = staging / "code"
    code.mkdir(parents=True)
    for name in CODE_FILES:
        src = FUNCTION_DIR / name
        if not src.is_file():
            raise BuildError(f"missing {src.relative_to(ROOT)}: the code package needs it")
        shutil.copyfile(src, code / name)
    shutil.copytree(LIBRARY_DIR, code / "ota_release", ignore=shutil.ignore_patterns(*CODE_EXCLUDE))
    return code


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class BuildResult:
    layer: Path | None
    code: Path | None
    #: The CPython 3.10 that byte-compiled both trees, or None (sources only).
    target_python: TargetPython | None = None
    #: How many ``.cpython-310.pyc`` files each zip holds.
    pyc_counts: tuple[tuple[str, int], ...] = ()

    @property
    def compiled(self) -> bool:
        return self.target_python is not None

    def manifest(self) -> dict[str, object]:
        """What ``dist/manifest.json`` records: target, bytecode, and each zip's digest.

        Only facts that follow from the inputs go in (no paths, no build time), so two
        builds of the same inputs write the same manifest.
        """
        bytecode: dict[str, object] = {"compiled": self.compiled}
        if self.target_python is not None:
            bytecode.update(
                {
                    "compiled_with": f"CPython {self.target_python.version}",
                    "tag": "cpython-310",
                    "invalidation_mode": INVALIDATION_MODE,
                    "pyc_files": dict(self.pyc_counts),
                }
            )
        else:
            bytecode["reason"] = (
                "no CPython 3.10 found (set OTA_BUILD_PYTHON310, pass --target-python, "
                "or install one with pyenv); each cold start compiles what it imports"
            )
        out: dict[str, object] = {
            "python": TARGET_PYTHON_VERSION,
            "compiled_pyc": self.compiled,
            "bytecode": bytecode,
        }
        for label, path in (("layer", self.layer), ("code", self.code)):
            if path is not None:
                out[label] = {
                    "path": path.name,
                    "bytes": path.stat().st_size,
                    "sha256": sha256_of(path),
                }
        return out


def build(
    out: Path = DEFAULT_OUT,
    cache: Path = DEFAULT_CACHE,
    *,
    layer: bool = True,
    code: bool = True,
    target_python: str | None = None,
) -> BuildResult:
    """Build the requested zips into ``out``; see the module docstring for their layout."""
    python310 = find_target_python(target_python)
    layer_zip = code_zip = None
    counts: list[tuple[str, int]] = []
    with tempfile.TemporaryDirectory(prefix="ota-dist-") as tmp:
        staging = Path(tmp)
        if layer:
            reqs = parse_requirements()
            fill_wheelhouse(reqs, cache)
            layer_root = staging / "layer"
            install_layer(reqs, cache, layer_root)
            if python310:
                counts.append(("layer", compile_tree(python310.path, layer_root)))
            layer_zip = out / "layer.zip"
            _zip_tree(layer_zip, layer_root)
        if code:
            code_root = stage_code(staging)
            if python310:
                counts.append(("code", compile_tree(python310.path, code_root)))
            code_zip = out / "code.zip"
            _zip_tree(code_zip, code_root)
    result = BuildResult(layer_zip, code_zip, python310, tuple(counts))
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(result.manifest(), indent=2) + "\n")
    return result


def check_reproducible(cache: Path, target_python: str | None) -> dict[str, str]:
    """Build twice into fresh directories; raise unless both builds are byte-identical."""
    digests: list[dict[str, str]] = []
    for _ in range(2):
        with tempfile.TemporaryDirectory(prefix="ota-repro-") as tmp:
            result = build(Path(tmp), cache, target_python=target_python)
            digests.append(
                {p.name: sha256_of(p) for p in (result.layer, result.code) if p is not None}
            )
    if digests[0] != digests[1]:
        raise BuildError(f"builds differ: {digests[0]} != {digests[1]}")
    return digests[0]


def lock(cache: Path) -> None:
    """Resolve ``layers/requirements.in`` for cp310/manylinux and rewrite requirements.txt.

    pip cannot resolve for a foreign platform while building sdists, so sdist-only
    packages are built into the wheelhouse first (a pure wheel is platform-independent)
    and the resolution is retried until it succeeds.
    """
    cache.mkdir(parents=True, exist_ok=True)
    # pip evaluates environment markers (``; python_version < "3.11"``) for the interpreter
    # it runs on, whatever --python-version says: resolving with 3.11 silently drops the
    # backports 3.10 needs (aiohttp's async-timeout). Resolve with a 3.10 when there is one.
    python310 = find_target_python()
    if python310 is None:
        raise BuildError(f"--lock needs CPython 3.10 to evaluate markers: {NO_PYTHON310}")
    built: dict[str, str] = {}
    for _ in range(30):
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            cmd = [
                python310.path,
                "-m",
                "pip",
                "--disable-pip-version-check",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                "--find-links",
                str(cache),
                "--target",
                str(Path(tmp) / "t"),
                *_target_args(),
                "-r",
                str(REQUIREMENTS_IN),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
            if proc.returncode == 0:
                data = json.loads(report.read_text())
                break
        miss = re.search(r"No matching distribution found for (\S+)", proc.stdout + proc.stderr)
        if not miss:
            raise BuildError(f"resolution failed:\n{proc.stdout}\n{proc.stderr}")
        spec = miss.group(1)
        name = re.split(r"[<>=!~ \[]", spec)[0]
        if _normalise(name) == "crcmod":
            req = Requirement("crcmod", "1.7", "pure-fallback")
            build_pure_fallback_wheel(req, cache)
            built[_normalise(name)] = "pure-fallback"
        else:
            _pip("wheel", "--no-deps", "--no-binary=:all:", "-w", str(cache), spec)
            built[_normalise(name)] = "sdist"
    else:
        raise BuildError("resolution did not converge")
    lines = [
        "# Runtime dependencies of the function layer, resolved for CPython 3.10 on",
        "# manylinux2014 x86_64 by `python scripts/build_dist.py --lock` from requirements.in.",
        "# Do not edit by hand; '# build:' marks packages without a usable wheel (see README.md).",
    ]
    for item in sorted(data["install"], key=lambda i: _normalise(i["metadata"]["name"])):
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        mode = built.get(_normalise(name))
        lines.append(f"{name}=={version}" + (f"  # build: {mode}" if mode else ""))
    REQUIREMENTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="wheelhouse directory")
    parser.add_argument("--layer-only", action="store_true")
    parser.add_argument("--code-only", action="store_true")
    parser.add_argument("--target-python", help="a CPython 3.10 used to byte-compile")
    parser.add_argument("--check-reproducible", action="store_true")
    parser.add_argument("--lock", action="store_true", help="re-resolve layers/requirements.txt")
    parser.add_argument(
        "--find-python310",
        action="store_true",
        help="print the CPython 3.10 the build would use (exit 1 if there is none)",
    )
    args = parser.parse_args(argv)
    if args.find_python310:
        found = find_target_python(args.target_python)
        if found is None:
            print(f"build_dist: {NO_PYTHON310}", file=sys.stderr)
            return 1
        print(found.path)
        return 0
    try:
        if args.lock:
            lock(args.cache)
            print(f"wrote {REQUIREMENTS.relative_to(ROOT)}")
            return 0
        if args.check_reproducible:
            digests = check_reproducible(args.cache, args.target_python)
            for name, digest in sorted(digests.items()):
                print(f"reproducible {name} sha256={digest}")
            return 0
        result = build(
            args.out,
            args.cache,
            layer=not args.code_only,
            code=not args.layer_only,
            target_python=args.target_python,
        )
    except BuildError as exc:
        print(f"build_dist: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.manifest(), indent=2))
    if not result.compiled:
        print(
            f"build_dist: WARNING: {NO_PYTHON310}; the zips hold no .pyc, so every cold "
            "start on FC compiles what it imports (see layers/README.md, 'Bytecode')",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
