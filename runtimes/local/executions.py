"""Running executions: start, poll, read, cancel, clean up, find orphans.

``{DATA_DIR}/executions/<execution_id>/`` holds ``input/``, ``output.log`` and the files of
:mod:`runtimes.local.supervisor`, which starts ``python -m planqk_runtime`` and outlives the
worker. Limits, strongest available first:

- a cgroup per execution (v2, or v1 ``pids``/``memory``/``cpu``) where the worker may write
  to ``/sys/fs/cgroup``: ``pids.max`` stops fork bombs, the memory limit ends in an OOM kill,
  the CPU quota throttles; the cgroup also finds every process to kill;
- ``setrlimit``: ``RLIMIT_FSIZE`` caps ``output.log``, ``RLIMIT_CPU`` bounds CPU time; when
  there is no cgroup, ``RLIMIT_AS`` bounds each process's memory (``MemoryError``) and
  ``RLIMIT_NPROC`` the tasks of the uid (what it runs already plus ``max_pids``: the kernel
  counts per uid, not per execution, so concurrent executions share that budget);
- when the worker runs as root, each running execution has a uid (and gid) of its own from
  ``PLANQK_EXECUTION_UIDS`` (:class:`~runtimes.local.sandbox.ExecutionUids`), because
  ``RLIMIT_NPROC`` does not apply to root and root can undo every other limit, and so that no
  execution can read, signal or trace another. Its folder is ``root:<its gid> 0750``, its
  environment and code folders are opened to its uid alone (an ACL entry), the rest of the data
  directory is closed to other users (:func:`~runtimes.local.sandbox.harden_data_dir`); at
  cleanup whatever still runs as the uid is killed and what it left in ``/tmp``, ``/var/tmp``
  and ``/dev/shm`` is removed;
- bubblewrap (``PLANQK_SANDBOX=bwrap``, the default; nothing runs where it does not work): new
  pid, network, IPC and UTS namespaces, a read-only view of the system, the environment and
  the code, private ``/tmp``, ``/var/tmp`` and ``/dev/shm``. Without it (``PLANQK_SANDBOX=none``,
  the operator's choice) a root worker still gives user code a private network namespace and
  its own uid, but it sees the host's file system and process list.

The supervisor is a child subreaper, enforces the timeout and the output cap itself, and kills
the whole tree (cgroup, process group, pid namespace, or the ``PLANQK_EXECUTION_ID`` marker in
the environment as the last resort) when the main program ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from planqk_runtime.channel import response_from_json
from planqk_runtime.outputs import OUTPUT_DIRECTORY_ENV, OutputFile, OutputLimits, collect
from planqk_runtime.protocol import FinalResponse
from runtimes._common import READABLE_DIR, decode_prefix, rmtree
from runtimes.base import ExecutionSpec, ExecutionState, RuntimeUnavailable, check_id
from runtimes.local import supervisor as sup
from runtimes.local.handles import LocalBuildHandle, LocalConfig, LocalExecutionHandle
from runtimes.local.sandbox import SANDBOX_TMP, Sandbox, harden_data_dir, tasks_of
from runtimes.local.waiter import Waiter

logger = logging.getLogger(__name__)

HANDLE_FILE = "handle.json"
LAUNCH_FILE = "launch.json"
OUTPUT_FILE = "output.log"
SUPERVISOR_SCRIPT = Path(sup.__file__).resolve()

# How long poll() lets the supervisor handle a timeout before the worker kills by itself.
TIMEOUT_GRACE_SECONDS = 10.0
# How long a stop may take before everything is killed without the supervisor's help.
STOP_WAIT_SECONDS = 3.0
READ_CHUNK_BYTES = 1024 * 1024
# How long a take waits for a warm runner's supervisor to read its go (it reads at once).
GO_WRITE_SECONDS = 5.0
TRAVERSE_ONLY = 0o711
# An execution's folder: the worker's, entered by the execution's own gid and nobody else.
EXECUTION_DIR_MODE = 0o750


#: The name of every warm runner's folder starts so (an execution id never does: ``job-``...).
WARM_PREFIX = "warm-"


def execution_env(
    spec: ExecutionSpec, build: LocalBuildHandle, *, seen: Path, sandboxed: bool, marker: str
) -> dict[str, str]:
    """The variables user code runs with; ``seen`` is the execution's folder as the code sees it
    (a warm runner's folder keeps, inside its sandbox, the name it started with)."""
    env = {
        "PATH": f"{Path(build.env_dir) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": build.env_dir,
        "HOME": SANDBOX_TMP if sandboxed else str(seen / "home"),
        "TMPDIR": SANDBOX_TMP if sandboxed else str(seen / "tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name, value in spec.env.items():
        if not name or "=" in name or "\0" in name or "\0" in str(value):
            raise ValueError(f"invalid environment variable {name!r}")
        env[name] = str(value)
    # Set last: user-supplied variables must not redirect the input or hide the marker.
    env["INPUT_DIR"] = str(seen / "input")
    # Where the program leaves its result files (Kipu's variable; the same path in the sandbox).
    env[OUTPUT_DIRECTORY_ENV] = str(seen / "output")
    env[sup.MARKER_ENV] = marker
    return env


class Executions:
    """The executions of one data folder, each run by its own supervisor process."""

    # Supervisors this process started, so it reaps them (others are reaped by init).
    _children: ClassVar[dict[str, subprocess.Popen[bytes]]] = {}

    def __init__(self, config: LocalConfig, data_dir: Path, sandbox: Sandbox) -> None:
        self.config = config
        self.data_dir = data_dir
        self.sandbox = sandbox
        self._warned = False
        self.waiter = Waiter(self.executions_dir)

    @property
    def executions_dir(self) -> Path:
        return self.data_dir / "executions"

    def _discard(self, exec_dir: Path) -> None:
        """Kill and remove what an earlier attempt of this execution left behind."""
        with contextlib.suppress(OSError, ValueError):
            old = LocalExecutionHandle.from_json(json.loads((exec_dir / HANDLE_FILE).read_text()))
            self._stop(old, "retry")
            self._forget(old)
            self._remove_runner_name(old)
        self._release_uid(exec_dir.name)
        rmtree(exec_dir)

    def _remove_runner_name(self, handle: LocalExecutionHandle) -> None:
        """Remove the link a taken warm runner's name left to the execution's folder (:meth:`take`)."""
        marker = handle.marker
        if marker and marker != handle.execution_id and marker.startswith(WARM_PREFIX):
            with contextlib.suppress(ValueError, OSError):
                alias = self.executions_dir / check_id(marker, "runner id")
                if alias.is_symlink():
                    alias.unlink()

    def _release_uid(self, execution_id: str) -> None:
        """Give the execution's uid back: its processes killed, its temporary files and rights gone."""
        uids = self.sandbox.uids()
        if uids is not None:
            uids.release(execution_id)

    def start(
        self, spec: ExecutionSpec, build: LocalBuildHandle, *, warm: dict[str, Any] | None = None
    ) -> LocalExecutionHandle:
        """Start the supervisor of one execution of ``build`` (the typed ``spec.build``).

        With ``warm`` (``{"ready": <pool entry>, "idle_seconds": n}``) this starts a warm runner
        instead (:mod:`runtimes.local.warm`): ``spec.execution_id`` is the runner's own name, the
        spec has no input and no variables, and :meth:`take` later gives it one execution. Every
        limit, the uid, the sandbox and the folder are made here, the same way for both.
        """
        execution_id = check_id(spec.execution_id, "execution id")
        for key, folder in (("env_dir", build.env_dir), ("build_dir", build.build_dir)):
            if not Path(folder).is_dir():
                raise RuntimeUnavailable(f"the build's {key} {folder} is gone; build the version again")
        mode, _ = self.sandbox.mode()
        if mode == "none" and not self._warned:
            logger.warning("%s", self.sandbox.line())
            self._warned = True
        as_root = os.geteuid() == 0
        uids = self.sandbox.uids()
        python = str(Path(build.env_dir) / "bin" / "python")
        if mode == "none" and uids is not None:
            # User code runs the interpreter as its own uid: its group may read it (once per worker).
            self.sandbox.open_interpreter(uids)

        self._reap_finished()
        if as_root:
            harden_data_dir(self.data_dir)
        self.executions_dir.mkdir(parents=True, exist_ok=True)
        # Searchable, not listable: an execution must not find the others by listing folders.
        os.chmod(self.executions_dir, TRAVERSE_ONLY)
        exec_dir = self.executions_dir / execution_id
        if exec_dir.exists():
            self._discard(exec_dir)
        uid = gid = None
        if uids is not None:
            uid = gid = uids.claim(execution_id, exec_dir, readable=(build.env_dir, build.build_dir))
        try:
            return self._launch(spec, build, exec_dir, mode=mode, uid=uid, gid=gid, python=python, warm=warm)
        except BaseException:
            if uids is not None:
                uids.release(execution_id)
            raise

    def _launch(
        self,
        spec: ExecutionSpec,
        build: LocalBuildHandle,
        exec_dir: Path,
        *,
        mode: str,
        uid: int | None,
        gid: int | None,
        python: str,
        warm: dict[str, Any] | None = None,
    ) -> LocalExecutionHandle:
        execution_id = exec_dir.name
        as_root = os.geteuid() == 0
        for sub in ("input/data", "input/params", "output", "home", "tmp", "etc"):
            (exec_dir / sub).mkdir(parents=True, exist_ok=True)
        if warm is None:
            self._write_input(exec_dir, spec)
        else:
            # The worker's channel to the supervisor: in the execution's folder, which no user
            # code sees (only its input, output and passwd files are bound into the sandbox).
            os.mkfifo(exec_dir / sup.WARM_GO_FIFO, 0o600)
        (exec_dir / OUTPUT_FILE).touch()
        run_uid = uid if uid is not None else os.getuid()
        run_gid = gid if gid is not None else os.getgid()
        (exec_dir / "etc" / "passwd").write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\nplanqk:x:{run_uid}:{run_gid}:planqk:/tmp:/usr/sbin/nologin\n"
        )
        (exec_dir / "etc" / "group").write_text(f"root:x:0:\nplanqk:x:{run_gid}:\n")
        for path in exec_dir.rglob("*"):
            if path.name != sup.WARM_GO_FIFO:
                os.chmod(path, READABLE_DIR if path.is_dir() else 0o644)
        if uid is not None and gid is not None:
            os.chown(exec_dir, 0, gid)
            os.chmod(exec_dir, EXECUTION_DIR_MODE)
            for sub in ("output", "home", "tmp"):
                os.chown(exec_dir / sub, uid, gid)
                os.chmod(exec_dir / sub, 0o700)
        else:
            os.chmod(exec_dir, 0o700)

        sandboxed = mode == "bwrap"
        env = execution_env(spec, build, seen=exec_dir, sandboxed=sandboxed, marker=execution_id)

        cgroups = self.sandbox.cgroups()
        memory_bytes = int(spec.memory_mb) * 1024 * 1024
        cpu_seconds = int(spec.timeout_seconds * max(1.0, spec.cpus)) + 5
        rlimits: dict[str, int | None] = {
            "CPU": cpu_seconds,
            "FSIZE": int(spec.max_output_bytes),
            "CORE": 0,
            # A cgroup limits the whole tree exactly; without one these are the limits.
            "AS": None if cgroups else memory_bytes,
            "NPROC": None if cgroups else tasks_of(run_uid) + int(spec.max_pids),
        }
        cgroup = None
        if cgroups:
            cgroup = {
                "version": cgroups.version,
                "dirs": cgroups.for_execution(execution_id),
                "pids_max": int(spec.max_pids),
                "memory_bytes": memory_bytes,
                "cpu_period_us": 100_000,
                "cpu_quota_us": int(spec.cpus * 100_000) if spec.cpus > 0 else 0,
            }
        if sandboxed:
            argv = self.sandbox.execution_argv(
                build=build, exec_dir=exec_dir, python=python, uid=uid, gid=gid, tmp_bytes=memory_bytes
            )
        else:
            argv = [python, "-m", "planqk_runtime"]
        launch = {
            "execution_id": execution_id,
            "dir": str(exec_dir),
            "argv": argv,
            "env": env,
            "cwd": build.build_dir,
            "output": str(exec_dir / OUTPUT_FILE),
            "timeout": spec.timeout_seconds,
            "max_output_bytes": spec.max_output_bytes,
            "output_dir": str(exec_dir / "output"),
            "output_limits": spec.output_limits.to_args(),
            "rlimits": rlimits,
            "cgroup": cgroup,
            # Without bubblewrap the supervisor drops privileges and unshares the network itself;
            # the executions' group is the only supplementary one (it may read the interpreter).
            "uid": None if sandboxed else uid,
            "gid": None if sandboxed else gid,
            "groups": [self.config.execution_group] if not sandboxed and uid is not None else [],
            "unshare": not sandboxed and as_root,
            "pid_namespace": sandboxed,
            "warm": warm,
        }
        sup.write_json_atomic(exec_dir / LAUNCH_FILE, launch)
        # It holds the execution's variables (provider tokens): the supervisor's alone.
        os.chmod(exec_dir / LAUNCH_FILE, 0o600)
        with open(exec_dir / "supervisor.log", "ab") as sup_log:
            proc = subprocess.Popen(
                [sys.executable, "-I", str(SUPERVISOR_SCRIPT), str(exec_dir / LAUNCH_FILE)],
                stdin=subprocess.DEVNULL,
                stdout=sup_log,
                stderr=sup_log,
                cwd=exec_dir,
                env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
                close_fds=True,
            )
        self._children[execution_id] = proc
        handle = LocalExecutionHandle(
            execution_id=execution_id,
            pid=proc.pid,
            pgid=proc.pid,
            start_time=sup.proc_start_time(proc.pid),
            dir=str(exec_dir),
            started_at=time.time(),
            timeout=spec.timeout_seconds,
            max_output_bytes=spec.max_output_bytes,
            sandbox=mode,
            cgroup=cgroup,
            uid=uid,
            marker=execution_id,
        )
        sup.write_json_atomic(exec_dir / HANDLE_FILE, handle.to_json())
        return handle

    @staticmethod
    def _write_input(exec_dir: Path, spec: ExecutionSpec) -> None:
        for name, value in (("data", spec.data), ("params", spec.params)):
            path = exec_dir / "input" / name / f"{name}.json"
            path.write_text(json.dumps(value or {}))
            os.chmod(path, 0o644)

    def take(self, spec: ExecutionSpec, build: LocalBuildHandle, runner: str) -> LocalExecutionHandle | None:
        """Give the execution ``spec`` to the warm runner ``runner`` (claimed by the caller from
        the pool): its folder becomes the execution's, its uid claim too, the input is written and
        the supervisor gets the go with the execution's clock and variables. None when the runner
        is gone or died meanwhile (what is left of it is cleaned up; start the execution cold)."""
        execution_id = check_id(spec.execution_id, "execution id")
        runner_dir = self.executions_dir / check_id(runner, "runner id")
        exec_dir = self.executions_dir / execution_id
        try:
            slot = LocalExecutionHandle.from_json(json.loads((runner_dir / HANDLE_FILE).read_text()))
        except (OSError, ValueError):
            return None
        if exec_dir.exists():
            self._discard(exec_dir)
        try:
            # Atomic: the folder is this execution's from now on, under its name (cleanup, orphans,
            # the waiter and a retried start find it as they find any execution's).
            os.rename(runner_dir, exec_dir)
        except OSError:
            return None
        with contextlib.suppress(OSError):
            # The runner's old name stays a way to the folder until the cleanup: paths the user
            # code took from its variables at import (OUTPUT_DIRECTORY, TMPDIR, HOME without a
            # sandbox) and the supervisor's own folder are under it. Only the uid (and root) the
            # folder is open to gets through it, as through the folder's own name.
            os.symlink(exec_dir.name, runner_dir)
        uids = self.sandbox.uids()
        if uids is not None and slot.uid is not None:
            uids.move(runner, execution_id, exec_dir)
        handle = dataclasses.replace(
            slot,
            execution_id=execution_id,
            dir=str(exec_dir),
            started_at=time.time(),
            timeout=spec.timeout_seconds,
            warm=True,
        )
        sup.write_json_atomic(exec_dir / HANDLE_FILE, handle.to_json())
        if self._read_exit(exec_dir) is not None or not self._supervisor_alive(handle):
            self.cleanup(handle)
            return None
        self._write_input(exec_dir, spec)
        sandboxed = slot.sandbox == "bwrap"
        # In the sandbox the folder is still mounted where the runner started; outside it moved.
        seen = Path(slot.dir) if sandboxed else exec_dir
        go = {
            "dir": str(exec_dir),
            "output_dir": str(exec_dir / "output"),
            "timeout": spec.timeout_seconds,
            "env": execution_env(spec, build, seen=seen, sandboxed=sandboxed, marker=slot.marker),
        }
        try:
            fd = os.open(exec_dir / sup.WARM_GO_FIFO, os.O_WRONLY | os.O_NONBLOCK)
            try:
                data = (json.dumps(go) + "\n").encode()
                # Non-blocking with a deadline: a go larger than the pipe's buffer waits for the
                # supervisor to read, and a supervisor that stalls must not hang the worker.
                give_up = time.monotonic() + GO_WRITE_SECONDS
                while data:
                    if not select.select([], [fd], [], max(0.0, give_up - time.monotonic()))[1]:
                        raise TimeoutError("the warm runner's supervisor took no go")
                    with contextlib.suppress(BlockingIOError):
                        data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
        except OSError:
            # ENXIO: no supervisor reads the FIFO any more (it ended a moment ago); or it stalled.
            self.cleanup(handle)
            return None
        return handle

    @classmethod
    def _reap_finished(cls) -> None:
        """Reap supervisors this process started whose executions another process polled.

        A Celery worker process may start an execution and never poll it again: without this,
        every such supervisor would stay a zombie until that process exits.
        """
        for execution_id, proc in list(cls._children.items()):
            if proc.poll() is not None:
                cls._children.pop(execution_id, None)

    def _supervisor_alive(self, handle: LocalExecutionHandle) -> bool:
        pid = handle.pid
        if not pid:
            return False
        proc = self._children.get(handle.execution_id)
        if proc is not None and proc.pid == pid:
            # Ours: poll() reaps it, so no zombie is left behind.
            return proc.poll() is None
        return sup.proc_alive(pid, handle.start_time)

    def _forget(self, handle: LocalExecutionHandle) -> None:
        proc = self._children.pop(handle.execution_id, None)
        if proc is not None and proc.pid == handle.pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0)

    def _output_size(self, exec_dir: Path) -> int:
        try:
            return (exec_dir / OUTPUT_FILE).stat().st_size
        except OSError:
            return 0

    def _hard_kill(self, handle: LocalExecutionHandle) -> None:
        """Kill everything of the execution without the supervisor's help."""
        exec_dir = Path(handle.dir)
        sup.cgroup_kill(handle.cgroup)
        with contextlib.suppress(OSError, ValueError, KeyError):
            child = json.loads((exec_dir / sup.CHILD_FILE).read_text())
            if sup.proc_alive(child["pid"], child["start_time"]):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child["pid"], signal.SIGKILL)
        if handle.pid:
            sup.kill_checked(handle.pid, handle.start_time, signal.SIGKILL)
        if not handle.cgroup:
            sup.kill_by_marker(handle.marker or handle.execution_id)
        sup.cgroup_remove(handle.cgroup)

    def _stop(self, handle: LocalExecutionHandle, reason: str) -> None:
        """Stop the execution for ``reason`` and wait until it has ended (a few seconds at most)."""
        exec_dir = Path(handle.dir)
        if (exec_dir / sup.EXIT_FILE).exists() or not exec_dir.exists():
            return
        sup.write_stop(exec_dir, reason)
        if self._supervisor_alive(handle):
            sup.kill_checked(handle.pid, handle.start_time, signal.SIGTERM)
        # Until the supervisor is gone, not only until it wrote its exit: it writes that first and
        # ends a moment later, and the caller (a cleanup) goes on to remove its cgroup and folder.
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while self._supervisor_alive(handle) and time.monotonic() < deadline:
            time.sleep(0.02)
        lingering = self._supervisor_alive(handle)  # reaps it when it is ours
        if lingering:
            logger.warning("execution %s: supervisor did not stop in time; killing", handle.execution_id)
        if lingering or not (exec_dir / sup.EXIT_FILE).exists():
            self._hard_kill(handle)
            self._supervisor_alive(handle)

    def poll(self, handle: LocalExecutionHandle) -> ExecutionState:
        exec_dir = Path(handle.dir)
        outcome = self._read_exit(exec_dir)
        if outcome is None and self._supervisor_alive(handle):
            # The supervisor enforces both limits itself; this is the fallback if it cannot.
            if time.time() > handle.started_at + handle.timeout + TIMEOUT_GRACE_SECONDS:
                self._stop(handle, "timeout")
            elif self._output_size(exec_dir) > handle.max_output_bytes:
                self._stop(handle, "output")
            else:
                return ExecutionState(running=True)
            outcome = self._read_exit(exec_dir)
        if outcome is None:
            # The supervisor is gone without a word: it was killed. Make sure nothing is left.
            self._hard_kill(handle)
            outcome = {"exit_code": None, "reason": sup.read_stop(exec_dir)}
        self._supervisor_alive(handle)
        reason = outcome.get("reason")
        return ExecutionState(
            running=False,
            exit_code=outcome.get("exit_code"),
            timed_out=reason == "timeout",
            oom_killed=bool(outcome.get("oom_killed")),
            output_truncated=reason == "output" or self._output_size(exec_dir) >= handle.max_output_bytes,
            peak_memory_kb=outcome.get("peak_memory_kb"),
            cancelled=reason == "cancel",
            output_files_exceeded=reason == "output-files",
        )

    def wait(self, handle: LocalExecutionHandle, timeout: float, *, offset: int | None = None) -> bool:
        """Until the execution ended or has output past ``offset``, or ``timeout`` passed
        (:mod:`runtimes.local.waiter`); False when this host gives no events (wait on the clock)."""
        return self.waiter.wait(handle, timeout, offset=offset)

    def final_response(self, handle: LocalExecutionHandle) -> FinalResponse | None:
        """The runner's response as its supervisor took it from the result pipe (``exit.json``).

        Written by the supervisor alone (user code never gets the folder for writing), after the
        runner exited; None while it runs, and when the runner died without answering.
        """
        outcome = self._read_exit(Path(handle.dir))
        return response_from_json(outcome.get("response")) if outcome else None

    def result_files(self, handle: LocalExecutionHandle, limits: OutputLimits) -> tuple[list[OutputFile], list[str]]:
        """The files in the execution's ``output`` folder, once its supervisor recorded the end.

        By then every process of the execution is gone (the supervisor killed the tree before
        writing ``exit.json``), so nothing changes the folder while it is read.
        """
        exec_dir = Path(handle.dir)
        if self._read_exit(exec_dir) is None:
            return [], []
        return collect(exec_dir / "output", limits)

    @staticmethod
    def _read_exit(exec_dir: Path) -> dict[str, Any] | None:
        try:
            return json.loads((exec_dir / sup.EXIT_FILE).read_text())
        except (OSError, ValueError):
            return None

    def read_output(self, handle: LocalExecutionHandle, offset: int) -> tuple[str, int]:
        limit = int(handle.max_output_bytes) - offset
        if limit <= 0:
            return "", offset
        try:
            with open(Path(handle.dir) / OUTPUT_FILE, "rb") as fh:
                fh.seek(offset)
                data = fh.read(min(limit, READ_CHUNK_BYTES))
        except OSError:
            return "", offset
        return decode_prefix(data, offset)

    def cancel(self, handle: LocalExecutionHandle) -> None:
        self._stop(handle, "cancel")

    def cleanup(self, handle: LocalExecutionHandle) -> None:
        exec_dir = Path(handle.dir)
        if exec_dir.exists() and exec_dir.parent.resolve() != self.executions_dir:
            raise ValueError(f"not an execution folder of this runtime: {exec_dir}")
        if handle.pid:
            self._stop(handle, "cleanup")
        sup.cgroup_remove(handle.cgroup)
        self._forget(handle)
        self.waiter.forget(handle.execution_id)
        self._release_uid(handle.execution_id)
        rmtree(exec_dir)
        self._remove_runner_name(handle)

    def orphans(self, known_execution_ids: set[str]) -> list[LocalExecutionHandle]:
        found: list[LocalExecutionHandle] = []
        if not self.executions_dir.exists():
            return found
        for entry in sorted(self.executions_dir.iterdir()):
            if not entry.is_dir() or entry.name in known_execution_ids:
                continue
            if entry.name.startswith(WARM_PREFIX):
                continue  # a warm runner no execution has taken: the pool's (runtimes.local.warm)
            try:
                handle = LocalExecutionHandle.from_json(json.loads((entry / HANDLE_FILE).read_text()))
            except (OSError, ValueError):
                handle = LocalExecutionHandle(execution_id=entry.name, dir=str(entry))
            found.append(handle)
        return found
