"""Warm runners: an execution takes a runner that has already started and imported its code.

A cold execution starts a supervisor, a sandbox, an interpreter and the user's imports, and
only then reads its input: for the trivial job that is most of its time, for a Qiskit service
the import of Qiskit is. A *warm runner* is exactly such an execution started ahead of time
(:meth:`Executions.start` with ``warm``): the same supervisor, the same bubblewrap sandbox, its
own uid, cgroup and folder, the same limits, with ``src.program`` imported; it waits for one
input (:mod:`planqk_runtime.channel`, the warm socket). An execution takes one
(:meth:`Executions.take`), gives it its input and variables, and the runner exits when that
execution ends: it is never reused, so nothing one caller leaves in memory, in ``/tmp`` or
``/dev/shm`` reaches another. Isolation is the cold path's by construction: there is one launch.

The pool is per *shape*: a version's build on this host with every limit that is fixed when a
runner starts (memory, CPUs, pids, output cap, timeout for RLIMIT_CPU, the sandbox). Its files,
shared by every worker process of the host::

    {DATA_DIR}/warm/<shape>/meta.json     how to start a runner of the shape (no input, no secret)
    {DATA_DIR}/warm/<shape>/calls         a line per execution of the shape (its time)
    {DATA_DIR}/warm/<shape>/ready/<id>    a runner that is ready; removing the entry claims it
    {DATA_DIR}/warm/<shape>/runners/<id>  every runner of the shape that is alive or starting

Sizing follows demand (:func:`target`): no runner for a shape not called for
``idle_seconds``; else between ``min_runners`` and ``max_runners``, as many as there were calls
in the last :data:`BURST_SECONDS`; never past ``memory_mb`` for all the host's idle runners. A
runner nobody takes stops itself after ``idle_seconds``. With ``enabled`` false nothing is
warm and every execution starts cold, as before.

Not built yet (issue 17): refilling by forking from a per-version template process (a refill
costs a cold start, off the execution's path). The Docker runtime's warm containers use this
pool's files and sizing (:class:`runtimes.docker.DockerWarmPool`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from planqk_runtime.outputs import OutputLimits
from runtimes._common import rmtree
from runtimes.base import ExecutionSpec, check_id
from runtimes.local import supervisor as sup
from runtimes.local.executions import HANDLE_FILE, WARM_PREFIX, Executions
from runtimes.local.handles import LocalBuildHandle, LocalExecutionHandle, WarmConfig

logger = logging.getLogger(__name__)

#: Calls within this many seconds count as concurrent demand (one runner each, up to the max).
BURST_SECONDS = 10.0
#: A runner folder without a handle file this long after it was made is a start that died.
_START_GRACE_SECONDS = 60.0
#: The calls file is rewritten with its recent lines once it is larger than this.
_CALLS_MAX_BYTES = 64 * 1024


def target(calls: list[float], now: float, config: WarmConfig) -> int:
    """How many runners a shape should have, given the times of its recent calls."""
    if not config.enabled or not calls or now - max(calls) > config.idle_seconds:
        return 0
    burst = sum(1 for at in calls if now - at <= BURST_SECONDS)
    return max(0, min(config.max_runners, max(config.min_runners, burst)))


def shape_of(spec: ExecutionSpec, build: LocalBuildHandle, sandbox: str, runner: str = "") -> str:
    """The name of the pool an execution can take a runner from: everything fixed at start,
    ``runner`` naming the platform's runner and supervisor code (a runner started before an
    upgrade has the old code in memory: after the upgrade it is never taken, and idles out)."""
    fixed = {
        "runner": runner,
        "version": build.version_id,
        "env": build.env_key,
        "code": build.code_digest,
        "build_dir": build.build_dir,
        "env_dir": build.env_dir,
        "memory_mb": int(spec.memory_mb),
        "cpus": float(spec.cpus),
        "timeout": int(spec.timeout_seconds),
        "max_pids": int(spec.max_pids),
        "max_output_bytes": int(spec.max_output_bytes),
        "output_limits": list(spec.output_limits.to_args()),
        "sandbox": sandbox,
    }
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:32]


class WarmPool:
    """The warm runners of one data folder (see the module docstring)."""

    def __init__(
        self, config: WarmConfig, data_dir: Path, executions: Executions, runner: Callable[[], str] = str
    ) -> None:
        self.config = config
        self.warm_dir = data_dir / "warm"
        self.executions = executions
        self.runner = runner
        self._refills: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0

    # --- the execution's side -----------------------------------------------------------------

    def take(self, spec: ExecutionSpec, build: LocalBuildHandle) -> LocalExecutionHandle | None:
        """A warm runner of ``spec``'s shape given ``spec``, or None (start it cold); the call
        counts as demand either way and the shape is refilled in the background."""
        if not self.config.enabled:
            return None
        mode, _ = self.executions.sandbox.mode()
        shape = shape_of(spec, build, mode, self.runner())
        folder = self.warm_dir / shape
        self._note_call(folder, spec, build)
        handle = None
        for runner in self._ready(folder):
            try:
                # The claim: exactly one taker (or one trimmer) removes the entry.
                (folder / "ready" / runner).unlink()
            except FileNotFoundError:
                continue
            handle = self.executions.take(spec, build, runner)
            (folder / "runners" / runner).unlink(missing_ok=True)
            if handle is not None:
                break
        self.refill_soon(shape)
        return handle

    def prewarm(self, spec: ExecutionSpec, build: LocalBuildHandle, *, wait_seconds: float = 0.0) -> int:
        """:meth:`LocalRuntime.prewarm` (``build`` has this host's folders)."""
        if not self.config.enabled:
            return 0
        mode, _ = self.executions.sandbox.mode()
        shape = shape_of(spec, build, mode, self.runner())
        folder = self.warm_dir / shape
        self._note_call(folder, spec, build)
        self.refill(shape)
        give_up = time.monotonic() + wait_seconds
        while not self._ready(folder) and time.monotonic() < give_up:
            time.sleep(0.01)
        return len(self._ready(folder))

    def refill_soon(self, shape: str) -> None:
        """Refill ``shape`` from a thread of this process, off the execution's path."""
        if self._thread is None or not self._thread.is_alive() or self._thread_pid != os.getpid():
            # A forked worker process inherits no running thread: it starts its own.
            self._refills = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._refill_loop, name="planqk-warm-refill", daemon=True)
            self._thread_pid = os.getpid()
            self._thread.start()
        self._refills.put(shape)

    def _refill_loop(self) -> None:
        while True:
            shape = self._refills.get()
            try:
                self.refill(shape)
            except Exception:
                logger.warning("warm pool %s: refilling failed", shape[:12], exc_info=True)

    # --- the pool's side ------------------------------------------------------------------------

    def refill(self, shape: str) -> int:
        """Start runners until ``shape`` has its :func:`target` (within the memory budget);
        returns how many were started."""
        folder = self.warm_dir / check_id(shape, "shape")
        started = 0
        with self._locked(folder) as meta:
            if meta is None:
                return 0
            want = target(self._calls(folder), time.time(), self.config)
            # Runners that stopped themselves (idle) or died still have their entry until a
            # trim: counted, they would keep the shape from ever being refilled before then.
            have = self._drop_ended(folder)
            for _ in range(max(0, want - len(have))):
                if not self._room(folder):
                    logger.info("warm pool %s: not starting a runner, the memory budget is used", shape[:12])
                    break
                self._start_runner(folder, meta)
                started += 1
        return started

    def _drop_ended(self, folder: Path) -> list[str]:
        """Clean up the shape's runners that ended; the ones left (the caller holds the lock)."""
        left = []
        for runner in self._runners(folder):
            if self._ended(runner):
                self._remove(folder, runner)
            else:
                left.append(runner)
        return left

    def _start_runner(self, folder: Path, meta: dict[str, Any]) -> None:
        runner = f"{WARM_PREFIX}{uuid.uuid4().hex}"
        build = LocalBuildHandle.from_json(meta["build"])
        spec = ExecutionSpec(
            execution_id=runner,
            build=build,
            memory_mb=meta["memory_mb"],
            cpus=meta["cpus"],
            timeout_seconds=meta["timeout_seconds"],
            max_pids=meta["max_pids"],
            max_output_bytes=meta["max_output_bytes"],
            output_limits=OutputLimits(**meta["output_limits"]),
        )
        (folder / "runners").mkdir(parents=True, exist_ok=True)
        (folder / "runners" / runner).touch()
        try:
            self.executions.start(
                spec,
                build,
                warm={"ready": str(folder / "ready" / runner), "idle_seconds": self.config.idle_seconds},
            )
        except BaseException:
            (folder / "runners" / runner).unlink(missing_ok=True)
            raise

    def trim(self) -> dict[str, int]:
        """Stop what is not wanted any more and clean up what ended: runners of shapes idle past
        ``idle_seconds`` (and the shape's folder), runners that died or stopped themselves, and
        idle runners over the memory budget (those of the least recently called shapes first).
        Called by the host's housekeeping; returns counts of what it did."""
        stopped = cleaned = 0
        if not self.warm_dir.is_dir():
            return {"stopped": 0, "cleaned": 0}
        now = time.time()
        shapes = []
        for folder in sorted(p for p in self.warm_dir.iterdir() if p.is_dir()):
            # The shape's start lock: a refill holds it while it starts runners, and a runner it
            # is starting has no folder yet; without the lock it would look like one that ended
            # and drop out of the pool's count (and, once it stopped itself, never be cleaned).
            with self._locked(folder):
                if not folder.is_dir():
                    continue
                calls = self._calls(folder)
                before = len(self._runners(folder))
                cleaned += before - len(self._drop_ended(folder))
                if target(calls, now, self.config) == 0:
                    stopped += self._stop_ready(folder, len(self._ready(folder)))
                    if not self._runners(folder):
                        rmtree(folder)
                        continue
            shapes.append((max(calls, default=0.0), folder))
        # Over the budget: the idle runners of the shapes called longest ago go first.
        for _, folder in sorted(shapes, key=lambda item: item[0]):
            while self._memory_kb() > self.config.memory_mb * 1024 and self._ready(folder):
                stopped += self._stop_ready(folder, 1)
        return {"stopped": stopped, "cleaned": cleaned}

    def stop_versions(self, version_ids: set[str]) -> int:
        """Forget the demand for these versions (deleted, or removed from this host) and stop their
        idle runners; a runner still starting stops at the next :meth:`trim`."""
        if not self.warm_dir.is_dir():
            return 0
        stopped = 0
        for folder in sorted(p for p in self.warm_dir.iterdir() if p.is_dir()):
            try:
                meta = json.loads((folder / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            if meta.get("build", {}).get("version_id") in version_ids:
                (folder / "calls").unlink(missing_ok=True)
                stopped += self._stop_ready(folder, len(self._ready(folder)))
        return stopped

    def summary(self) -> str:
        """One line for ``describe()`` and the operator: the settings and what is warm now."""
        config = self.config
        if not config.enabled:
            return "off (every execution starts cold)"
        state = self.state()
        ready = sum(shape["ready"] for shape in state)
        memory_mb = sum(shape["memory_kb"] for shape in state) / 1024
        return (
            f"on: {config.min_runners}-{config.max_runners} single-use runners per version called in the last "
            f"{config.idle_seconds} s, {config.memory_mb} MB for all; now {ready} ready for {len(state)} "
            f"version(s), {memory_mb:.0f} MB"
        )

    def stop_all(self, wait_seconds: float = 0.0) -> int:
        """Stop every idle runner of this host (the host's shutdown, or warm execution turned off);
        with ``wait_seconds``, also those still starting, as they get ready (a start cannot be
        stopped half-way without racing its taker: a ready runner is claimed like a taker does).
        This process's queued refills are dropped first."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._refills.get_nowait()
        give_up = time.monotonic() + wait_seconds
        stopped = 0
        while self.warm_dir.is_dir():
            starting = False
            for folder in sorted(p for p in self.warm_dir.iterdir() if p.is_dir()):
                stopped += self._stop_ready(folder, len(self._ready(folder)))
                starting = starting or any(not self._ended(runner) for runner in self._runners(folder))
            if not starting or time.monotonic() >= give_up:
                break
            time.sleep(0.05)
        return stopped

    def state(self) -> list[dict[str, Any]]:
        """Per shape: its version, runners ready and starting, their memory and the last call
        (for the settings page and ``describe()``)."""
        found: list[dict[str, Any]] = []
        if not self.warm_dir.is_dir():
            return found
        now = time.time()
        for folder in sorted(p for p in self.warm_dir.iterdir() if p.is_dir()):
            try:
                meta = json.loads((folder / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            calls = self._calls(folder)
            ready = self._ready(folder)
            runners = self._runners(folder)
            found.append(
                {
                    "shape": folder.name,
                    "version_id": meta["build"].get("version_id", ""),
                    "ready": len(ready),
                    "starting": max(0, len(runners) - len(ready)),
                    "target": target(calls, now, self.config),
                    "memory_kb": sum(self._runner_memory_kb(runner) for runner in ready),
                    "last_call": max(calls, default=None),
                }
            )
        return found

    # --- helpers ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[dict[str, Any] | None]:
        """The shape's start lock (one refill at a time per host) and its meta, None if gone."""
        try:
            fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            yield None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                meta = json.loads((folder / "meta.json").read_text())
            except (OSError, ValueError):
                meta = None
            yield meta
        finally:
            os.close(fd)

    def _note_call(self, folder: Path, spec: ExecutionSpec, build: LocalBuildHandle) -> None:
        (folder / "ready").mkdir(parents=True, exist_ok=True)
        if not (folder / "meta.json").exists():
            meta = {
                "build": build.to_json(),
                "memory_mb": int(spec.memory_mb),
                "cpus": float(spec.cpus),
                "timeout_seconds": int(spec.timeout_seconds),
                "max_pids": int(spec.max_pids),
                "max_output_bytes": int(spec.max_output_bytes),
                "output_limits": asdict(spec.output_limits),
            }
            sup.write_json_atomic(folder / "meta.json", meta)
        calls = folder / "calls"
        # O_APPEND: the workers of a host add their lines without a lock.
        with open(calls, "a") as fh:
            fh.write(f"{time.time():.3f}\n")
        with contextlib.suppress(OSError):
            if calls.stat().st_size > _CALLS_MAX_BYTES:
                recent = self._calls(folder)[-1000:]
                tmp = folder / f".calls.{os.getpid()}"
                tmp.write_text("".join(f"{at:.3f}\n" for at in recent))
                os.replace(tmp, calls)

    @staticmethod
    def _calls(folder: Path) -> list[float]:
        try:
            text = (folder / "calls").read_text()
        except OSError:
            return []
        calls = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                calls.append(float(line))
        return calls

    @staticmethod
    def _ready(folder: Path) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(folder / "ready") if e.name.startswith(WARM_PREFIX))
        except OSError:
            return []

    @staticmethod
    def _runners(folder: Path) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(folder / "runners") if e.name.startswith(WARM_PREFIX))
        except OSError:
            return []

    def _handle(self, runner: str) -> LocalExecutionHandle | None:
        try:
            data = json.loads((self.executions.executions_dir / runner / HANDLE_FILE).read_text())
            return LocalExecutionHandle.from_json(data)
        except (OSError, ValueError):
            return None

    def _ended(self, runner: str) -> bool:
        """Whether the runner stopped (idle, died) without an execution taking it."""
        runner_dir = self.executions.executions_dir / runner
        if runner_dir.is_symlink() or not runner_dir.exists():
            # Taken (its folder is an execution's now, its name a link to it) or removed.
            return True
        if (runner_dir / sup.EXIT_FILE).exists():
            return True
        handle = self._handle(runner)
        if handle is None:
            # No handle file: its start failed half-way (the starting process died); after a
            # grace period nothing will complete it.
            with contextlib.suppress(OSError):
                return time.time() - runner_dir.stat().st_mtime > _START_GRACE_SECONDS
            return True
        return not sup.proc_alive(handle.pid or 0, handle.start_time)

    def _remove(self, folder: Path, runner: str) -> None:
        (folder / "ready" / runner).unlink(missing_ok=True)
        runner_dir = self.executions.executions_dir / runner
        handle = self._handle(runner) or LocalExecutionHandle(execution_id=runner, dir=str(runner_dir), marker=runner)
        # A taken runner's name is a link to an execution's folder: that is the execution's to clean.
        if runner_dir.exists() and not runner_dir.is_symlink():
            self.executions.cleanup(handle)
        (folder / "runners" / runner).unlink(missing_ok=True)

    def _stop_ready(self, folder: Path, count: int) -> int:
        stopped = 0
        for runner in self._ready(folder)[:count]:
            try:
                (folder / "ready" / runner).unlink()  # the same claim a taker makes
            except FileNotFoundError:
                continue
            self._discard(runner)
            (folder / "runners" / runner).unlink(missing_ok=True)
            stopped += 1
        return stopped

    def _discard(self, runner: str) -> None:
        """Stop a runner the caller claimed and remove what it holds (its folder, uid, cgroup)."""
        handle = self._handle(runner)
        if handle is not None:
            self.executions.cleanup(handle)

    def _room(self, folder: Path) -> bool:
        """Whether one more runner of this shape fits the memory budget (estimated as the mean of
        the shape's ready runners; the first of a shape is started while anything is left)."""
        used = self._memory_kb()
        sizes = [self._runner_memory_kb(runner) for runner in self._ready(folder)]
        estimate = sum(sizes) / len(sizes) if sizes else 0
        return used + estimate < self.config.memory_mb * 1024

    def _memory_kb(self) -> int:
        total = 0
        if not self.warm_dir.is_dir():
            return 0
        for folder in self.warm_dir.iterdir():
            if folder.is_dir():
                total += sum(self._runner_memory_kb(runner) for runner in self._runners(folder))
        return total

    def _runner_memory_kb(self, runner: str) -> int:
        handle = self._handle(runner)
        if handle is None:
            return 0
        return runner_memory_kb(handle)


def runner_memory_kb(handle: LocalExecutionHandle) -> int:
    """What a runner holds in memory: its cgroup's charge where it has one, else the proportional
    set size (shared pages split among their users) of its processes, as psutil reads it."""
    if handle.cgroup:
        memory = handle.cgroup.get("dirs", {}).get("memory")
        for name in ("memory.current", "memory.usage_in_bytes"):
            with contextlib.suppress(OSError, ValueError):
                return int(Path(memory, name).read_text()) // 1024
    import psutil

    try:
        top = psutil.Process(handle.pid or 0)
        processes = [top, *top.children(recursive=True)]
    except (psutil.Error, ValueError):
        return 0
    total = 0
    for process in processes:
        try:
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.AccessDenied:
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        except psutil.Error:
            continue
    return total // 1024
