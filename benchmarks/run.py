"""`make bench`: measure the eight performance figures side by side and print the table.

Every figure is a ratio of two things measured in the same run on the same machine, so a
busy or slow machine moves both sides together. Each side is repeated and the best
(throughput) or the median (cold start) is kept; docs/benchmarks.md explains why.

Everything runs on the local cloud on 127.0.0.1. The large objects are written straight
into the local OSS's data directory under a temporary directory, which is removed at the
end (also on failure or Ctrl-C).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from localcloud.cloud import SRC_DIR, LocalCloud
from localcloud.credentials import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from scripts import build_dist

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The cold-start worker, run as a module from its own directory (so it loads from its pyc).
WORKER = "coldstart_worker.py"
MIB = 1024 * 1024
GIB = 1024 * MIB


# --------------------------------------------------------------------------- results


@dataclass
class Figure:
    """One row of the table: what was measured, the ratio, the target and the verdict."""

    name: str
    measured: str
    target: str
    ok: bool
    detail: str = ""


def print_table(figures: list[Figure]) -> None:
    rows = [("figure", "measured", "target", "", "detail")]
    rows += [(f.name, f.measured, f.target, "ok" if f.ok else "MISS", f.detail) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row[:4])) + "  " + row[4])
        if i == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 6)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Python {platform.python_version()}"
    )


# --------------------------------------------------------------------------- objects


class PatternReader:
    """``size`` bytes of an incompressible 1 MiB pattern, read like a file (no memory)."""

    def __init__(self, size: int, seed: bytes) -> None:
        self.left = size
        block = b""
        counter = 0
        while len(block) < MIB:
            block += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            counter += 1
        self.block = block[:MIB]

    def read(self, n: int = -1) -> bytes:
        n = min(self.left, MIB if n < 0 or n > MIB else n)
        self.left -= n
        return self.block[:n]


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(SRC_DIR)])
    env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    env.update(extra or {})
    return env


def run_json(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


# --------------------------------------------------------------------------- digest


class DigestBench:
    """Figures 1-4: streaming digest (MD5, SHA-256) vs hashlib, ETag fast path, peak RSS."""

    def __init__(self, cloud: LocalCloud, repeat: int) -> None:
        self.cloud = cloud
        self.repeat = repeat
        self.bucket = cloud.bucket

    def put(self, key: str, size: int) -> None:
        reader = cast(BinaryIO, PatternReader(size, key.encode()))  # read() is all it uses
        self.cloud.oss.put_object(self.bucket, key, reader, notify=False)

    def worker(self, key: str, sign_method: str, path: str = "stream") -> dict[str, Any]:
        return run_json(
            [
                sys.executable,
                "-m",
                "benchmarks.digest_worker",
                "--endpoint",
                self.cloud.endpoints.oss,
                "--bucket",
                self.bucket,
                "--key",
                key,
                "--access-key-id",
                DEFAULT_ACCESS_KEY_ID,
                "--access-key-secret",
                DEFAULT_ACCESS_KEY_SECRET,
                "--sign-method",
                sign_method,
                "--path",
                path,
            ],
            worker_env(),
        )

    def in_memory_seconds(self, key: str, sign_method: str) -> tuple[float, str]:
        """hashlib over the object's bytes already in memory (one update, no copies)."""
        with self.cloud.oss.open_object(self.bucket, key) as handle:
            data = handle.read()
        algorithm = "md5" if sign_method == "MD5" else "sha256"
        best, sign = float("inf"), ""
        for _ in range(self.repeat):
            started = time.perf_counter()
            sign = hashlib.new(algorithm, data).hexdigest()
            best = min(best, time.perf_counter() - started)
        del data
        return best, sign

    def throughput(self, size: int) -> list[Figure]:
        key = "bench/throughput.bin"
        self.put(key, size)
        figures = []
        stream_md5_seconds = 0.0
        for method in ("MD5", "SHA256"):
            memory_seconds, expected = self.in_memory_seconds(key, method)
            runs = [self.worker(key, method) for _ in range(self.repeat)]
            if any(r["sign"] != expected for r in runs):
                raise RuntimeError(f"streamed {method} differs from hashlib's")
            stream_seconds = min(r["seconds"] for r in runs)
            if method == "MD5":
                stream_md5_seconds = stream_seconds
            ratio = memory_seconds / stream_seconds
            figures.append(
                Figure(
                    f"digest {method} stream/hashlib ({size // MIB} MiB)",
                    f"{ratio:.2f}",
                    ">= 0.85",
                    ratio >= 0.85,
                    f"stream {size / MIB / stream_seconds:.0f} MiB/s, "
                    f"hashlib {size / MIB / memory_seconds:.0f} MiB/s",
                )
            )
        fast = [self.worker(key, "MD5", path="etag") for _ in range(self.repeat)]
        fast_seconds = min(r["seconds"] for r in fast)
        speedup = stream_md5_seconds / fast_seconds
        figures.append(
            Figure(
                f"ETag fast path vs streaming MD5 ({size // MIB} MiB)",
                f"{speedup:.0f}x",
                ">= 50x",
                speedup >= 50 and fast[0]["source"] == "etag",
                f"HEAD {fast_seconds * 1000:.1f} ms, stream {stream_md5_seconds:.2f} s",
            )
        )
        self.cloud.oss.delete_object(self.bucket, key)
        return figures

    def memory(self, large: int) -> Figure:
        small_key, large_key = "bench/rss-small.bin", "bench/rss-large.bin"
        self.put(small_key, MIB)
        self.put(large_key, large)
        small = [self.worker(small_key, "SHA256")["max_rss_kib"] for _ in range(self.repeat)]
        big = [self.worker(large_key, "SHA256")["max_rss_kib"] for _ in range(self.repeat)]
        growth = (statistics.median(big) - statistics.median(small)) / 1024
        for key in (small_key, large_key):
            self.cloud.oss.delete_object(self.bucket, key)
        return Figure(
            f"peak RSS growth {large // MIB} MiB vs 1 MiB digest",
            f"{growth:+.1f} MiB",
            "<= 32 MiB",
            growth <= 32,
            f"peak RSS {statistics.median(big) / 1024:.0f} vs "
            f"{statistics.median(small) / 1024:.0f} MiB",
        )


# --------------------------------------------------------------------------- cold start


class ColdStartBench:
    """Figures 5-7: a fresh CPython 3.10 process importing the handler and invoking it once.

    Measured on the Python FC runs the function on (3.10) against the zips as
    ``scripts/build_dist.py`` builds them, unpacked the way FC lays them out: the code
    package as the working directory and first on the path (FC's ``/code``), the layer's
    ``python/`` after it (FC's ``/opt/python``). A second copy of both trees, with every
    ``__pycache__`` removed, is what a deployment without bytecode would run.
    ``PYTHONDONTWRITEBYTECODE`` keeps every start cold: nothing is cached between runs,
    as on FC, where each new instance starts from the unpacked zips.
    """

    def __init__(self, cloud: LocalCloud, repeat: int, work_dir: Path) -> None:
        self.cloud = cloud
        self.repeat = repeat
        target = build_dist.find_target_python()
        if target is None:
            raise RuntimeError(
                f"the cold-start figures run on the function's Python: {build_dist.NO_PYTHON310}"
            )
        self.python = target
        built = build_dist.build(work_dir / "dist")
        if not built.compiled or built.layer is None or built.code is None:
            raise RuntimeError("build_dist did not produce byte-compiled zips")
        self.trees: dict[str, tuple[Path, Path]] = {}
        for variant in ("pyc", "source"):
            code, opt = work_dir / variant / "code", work_dir / variant / "opt"
            zipfile.ZipFile(built.code).extractall(code)
            zipfile.ZipFile(built.layer).extractall(opt)
            if variant == "source":
                for cache in sorted(work_dir.joinpath(variant).rglob("__pycache__")):
                    shutil.rmtree(cache)
            self.trees[variant] = (code, opt)
        # The worker itself is compiled alike for both variants (it is not what is compared).
        worker_dir = work_dir / "worker"
        worker_dir.mkdir()
        shutil.copyfile(Path(__file__).with_name("coldstart_worker.py"), worker_dir / WORKER)
        build_dist.compile_tree(target.path, worker_dir)
        self.worker_dir = worker_dir
        assert cloud.fc is not None
        self.base_env = cloud.fc.instance_env()

    def _event(self, key: str) -> str:
        record = {
            "eventName": "ObjectCreated:PutObject",
            "eventSource": "acs:oss",
            "eventTime": "2024-01-01T00:00:00.000Z",
            "region": "cn-shanghai",
            "oss": {
                "bucket": {"name": self.cloud.bucket},
                # No eTag: the function judges the object as it is (a bench re-stores it).
                "object": {"key": key, "size": 1},
            },
        }
        return json.dumps({"events": [record]})

    def _release(self, sidecar: dict[str, Any]) -> str:
        """Store a firmware + sidecar pair (no trigger); the event names the sidecar."""
        key = f"{self.cloud.prefix}bench/{uuid.uuid4().hex[:8]}/cold-1.0.0.bin"
        self.cloud.oss.put_object(self.cloud.bucket, key, b"firmware" * 512, notify=False)
        self.cloud.oss.put_object(
            self.cloud.bucket, key + ".ota.json", json.dumps(sidecar).encode(), notify=False
        )
        return self._event(key + ".ota.json")

    def _time(self, *args: str, variant: str = "pyc") -> tuple[float, dict[str, Any] | None]:
        code, opt = self.trees[variant]
        env = dict(self.base_env)
        env["PYTHONPATH"] = os.pathsep.join([str(self.worker_dir), str(code), str(opt / "python")])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        # -S: nothing of the build machine's site-packages (where a .pth may run code at
        # every start) belongs to a cold start on FC; the code and layer come by PYTHONPATH.
        argv = [self.python.path, "-S", "-m", WORKER.removesuffix(".py"), *args]
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=code, check=False)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"cold start {args} ({variant}) failed:\n{proc.stderr[-2000:]}")
        # The handler logs JSON lines to stdout too; the worker's summary is the last line.
        lines = proc.stdout.strip().splitlines()
        return elapsed, (json.loads(lines[-1]) if lines else None)

    def run(self) -> list[Figure]:
        kinds = ("rej", "eager", "created", "eager+c", "created-src")
        samples: dict[str, list[float]] = {k: [] for k in kinds}
        outcomes: Counter[str] = Counter()
        broken = {"version": "1.0.0", "name": "bad name!", "type": "diff"}

        def created(*extra: str, variant: str = "pyc") -> float:
            good = {"version": "1.0.0", "name": f"cold-{uuid.uuid4().hex[:10]}"}
            seconds, out = self._time(*extra, "--event", self._release(good), variant=variant)
            outcomes.update(out["outcomes"] if out else [])
            return seconds

        # Interleaved so that a noisy neighbour hurts every variant alike.
        for _ in range(self.repeat):
            seconds, out = self._time("--event", self._release(broken))
            samples["rej"].append(seconds)
            outcomes.update(out["outcomes"] if out else [])
            samples["eager"].append(self._time("--eager", "--no-invoke")[0])
            samples["created"].append(created())
            samples["eager+c"].append(created("--eager"))
            samples["created-src"].append(created(variant="source"))
        expected = {"rejected": self.repeat, "created": 3 * self.repeat}
        if dict(outcomes) != expected:
            raise RuntimeError(f"cold-start outcomes {dict(outcomes)}, expected {expected}")
        m = {k: statistics.median(v) for k, v in samples.items()}

        # Each round's processes ran back to back, so their ratio cancels the slow swings
        # of a shared machine's load; a figure is the median of those per-round ratios.
        def paired(a: str, b: str) -> float:
            return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))

        rejected, created_ratio, bytecode = (
            paired("rej", "eager"),
            paired("created", "eager+c"),
            paired("created", "created-src"),
        )
        on = f"CPython {self.python.version}, the built zips"
        return [
            Figure(
                "cold start rejected / eager SDK import",
                f"{rejected:.2f}",
                "<= 0.4",
                rejected <= 0.4,
                f"medians {m['rej'] * 1000:.0f} ms vs {m['eager'] * 1000:.0f} ms; median of "
                f"{self.repeat} paired ratios; {on}",
            ),
            Figure(
                "cold start created / eager + invocation",
                f"{created_ratio:.2f}",
                "<= 1.0",
                created_ratio <= 1.0,
                f"medians {m['created'] * 1000:.0f} ms vs {m['eager+c'] * 1000:.0f} ms; {on}",
            ),
            Figure(
                "cold start created, built bytecode / sources only",
                f"{bytecode:.2f}",
                "<= 0.6",
                bytecode <= 0.6,
                f"medians {m['created'] * 1000:.0f} ms vs {m['created-src'] * 1000:.0f} ms; {on}",
            ),
        ]


# --------------------------------------------------------------------------- burst


def burst(uploads: int, instances: int, concurrency: int | None = None, qps: int = 10) -> Figure:
    """Figure 8: ``uploads`` firmware uploads at once, IoT limited to ``qps`` per action.

    ``instances`` is the function's instance cap and ``concurrency`` its InstanceConcurrency
    (None: template.yml's); each instance paces itself to its share of ``qps``.
    """
    share = qps / instances
    with LocalCloud(
        flavour="fun",
        max_instances=instances,
        instance_concurrency=concurrency,
        iot_qps=qps,
        env_overrides={"OTA_IOT_QPS": f"{share:g}"},
    ) as cloud:
        harness = _Uploader(cloud)
        keys = [f"{cloud.prefix}burst/{i:04d}/fw-{i}.bin" for i in range(uploads)]
        for i, key in enumerate(keys):  # sidecars first, without triggers
            # One release of a product line: the same version for every product, so the
            # ListOTAFirmware check is narrowed by product (one page per release).
            sidecar = {"version": "1.0.0", "name": f"burst-{i:04d}", "product_key": f"pk{i:04d}"}
            cloud.oss.put_object(
                cloud.bucket, key + ".ota.json", json.dumps(sidecar).encode(), notify=False
            )
        started = time.time()
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(harness.put, keys))
        if not cloud.wait_idle(timeout=60 + 2 * uploads / qps):
            raise RuntimeError("the burst did not finish")
        messages = [json.loads(m.body) for m in cloud.mns.messages(cloud.notify_topic)]
        publish_ms = [m.publish_time for m in cloud.mns.messages(cloud.notify_topic)]
        created = Counter(m["object"]["key"] for m in messages if m["outcome"] == "created")
        ids_per_key: dict[str, set[str]] = {}
        for m in messages:
            ids_per_key.setdefault(m["object"]["key"], set()).add(m["message_id"])
        names = Counter(f.firmware_name for f in cloud.iot.firmwares())
        duplicates = sum(n - 1 for n in names.values() if n > 1) + sum(
            len(ids) - 1 for ids in ids_per_key.values()
        )
        lost = sum(1 for key in keys if created[key] == 0)
        makespan = max(publish_ms) / 1000 - started
        throttled = cloud.iot.calls["CreateOTAFirmware"] - len(names)
        calls = dict(cloud.iot.calls)
        assert cloud.fc is not None
        concurrency_used = cloud.fc.instance_concurrency
    ratio = makespan / (uploads / qps)
    return Figure(
        f"burst of {uploads} at {qps} QPS: makespan / ({uploads}/{qps} s)",
        f"{ratio:.2f}",
        "<= 1.15, 0 dup, 0 lost",
        ratio <= 1.15 and duplicates == 0 and lost == 0,
        f"{makespan:.1f} s, {duplicates} duplicates, {lost} lost, {instances} instance(s) x "
        f"{concurrency_used} at once, {share:g} QPS each, {throttled} throttled "
        f"CreateOTAFirmware, IoT calls {calls}",
    )


class _Uploader:
    def __init__(self, cloud: LocalCloud) -> None:

        self.local = threading.local()
        self.make: Callable[[], Any] = cloud.sdk_bucket

    def put(self, key: str) -> None:
        bucket = getattr(self.local, "bucket", None)
        if bucket is None:
            bucket = self.local.bucket = self.make()
        bucket.put_object(key, key.encode() * 64)


# --------------------------------------------------------------------------- staged


def staged_figure(cloud: LocalCloud, size: int, repeat: int) -> Figure:
    """Figure 7: a staged release (HEAD to created) / one plain oss2 stream of the object.

    The plain stream is oss2 as a user calls it (CRC-64 checked); the detail line also
    gives the release against a bare read (no CRC) and against the floor of a one-pass
    copy (docs/benchmarks.md, "Staged release").
    """
    from benchmarks.staged_worker import measure

    m = measure(cloud, size, repeat, PatternReader)
    ratio = m["release"] / m["plain"]
    return Figure(
        f"staged release / plain stream ({size // MIB} MiB)",
        f"{ratio:.2f}",
        "<= 1.2",
        ratio <= 1.2 and m["outcomes"] == ["created"] * repeat,
        f"release {m['release']:.2f} s, oss2 stream with CRC-64 {m['plain']:.2f} s; "
        f"release / bare read {m['release'] / m['bare']:.2f} ({m['bare']:.2f} s), "
        f"/ one-pass copy floor {m['release'] / m['copy']:.2f} ({m['copy']:.2f} s); "
        f"best of {repeat}",
    )


# --------------------------------------------------------------------------- main


@contextmanager
def bench_cloud(data_root: Path) -> Iterator[LocalCloud]:
    with LocalCloud(flavour="fun", data_dir=data_root / "cloud", iot_qps=None) as cloud:
        yield cloud


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="digest object size")
    parser.add_argument("--large-mib", type=int, default=2048, help="RSS object size")
    parser.add_argument("--repeat", type=int, default=3, help="digest repetitions")
    parser.add_argument("--cold-repeat", type=int, default=11, help="cold-start repetitions")
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument(
        "--instances", type=int, default=1, help="burst: the function's instance cap"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="burst: InstanceConcurrency (default: template.yml's)",
    )
    parser.add_argument(
        "--only",
        choices=["digest", "memory", "cold", "burst", "staged"],
        action="append",
        default=None,
    )
    parser.add_argument(
        "--staged-mib", type=int, default=1000, help="staged release object (IoT's maximum)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.size_mib, args.large_mib, args.repeat, args.cold_repeat = 64, 128, 1, 2
        args.uploads, args.staged_mib = 30, 64
    parts = set(args.only or ["digest", "memory", "cold", "burst", "staged"])
    print(f"machine: {machine()}")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="ota-bench-") as tmp, bench_cloud(Path(tmp)) as cloud:
        digest = DigestBench(cloud, args.repeat)
        if "digest" in parts:
            figures += digest.throughput(args.size_mib * MIB)
        if "memory" in parts:
            figures.append(digest.memory(args.large_mib * MIB))
        if "cold" in parts:
            figures += ColdStartBench(cloud, args.cold_repeat, Path(tmp) / "cold").run()
        if "staged" in parts:
            figures.append(staged_figure(cloud, args.staged_mib * MIB, args.repeat))
    if "burst" in parts:
        figures.append(burst(args.uploads, args.instances, args.concurrency))
    print()
    print_table(figures)
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
