"""The supervisor of one local execution: ``python -I supervisor.py <dir>/launch.json``.

The local runtime does not run user code as its own child. It starts this small, standard
library only program in a session of its own, and this program starts the user code, waits for
it and writes the outcome to ``exit.json``. So the execution does not depend on the worker:

- a worker that dies or restarts does not take the execution with it, and a new worker
  reattaches by reading files (``exit.json``, ``stop``, ``output.log``) and ``/proc``;
- the wall-clock timeout and the output cap are enforced here even when no worker polls;
- the exit code, the peak memory and the OOM kill are recorded by the only process that can
  know them (the parent of the user code), instead of being lost when the worker is not it.

bubblewrap runs with ``--die-with-parent`` relative to this supervisor (not to the worker): if
the supervisor is killed, the whole sandbox goes with it.

The worker imports this module too, for the cgroup and /proc helpers, so both sides kill and
inspect an execution the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:
    from planqk_runtime import channel
except ImportError:  # started as a script with -I from a checkout: the package is beside us
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from planqk_runtime import channel

# The stop file names why an execution was stopped; the first writer wins, so a cancel that
# races a timeout is reported as whichever happened first.
STOP_FILE = "stop"
EXIT_FILE = "exit.json"
CHILD_FILE = "child.json"
MARKER_ENV = "PLANQK_EXECUTION_ID"
#: The FIFO in a warm runner's folder on which the worker hands it its execution.
WARM_GO_FIFO = "go"
#: How long a warm runner claimed by a taker as its idle time ran out waits for the go before it
#: stops (the taker died between its claim and its go).
WARM_CLAIM_GRACE_SECONDS = 30.0

_CLONE_NEWNET = 0x40000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUTS = 0x04000000
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_CHILD_SUBREAPER = 36
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4

_RLIMITS = {
    "AS": resource.RLIMIT_AS,
    "CPU": resource.RLIMIT_CPU,
    "FSIZE": resource.RLIMIT_FSIZE,
    "NPROC": resource.RLIMIT_NPROC,
    "CORE": resource.RLIMIT_CORE,
}


# --- /proc helpers ---------------------------------------------------------------------------


def proc_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None if there is no such process.

    A pid is only trusted together with its start time: pids are reused.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; count from the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def proc_alive(pid: int, start_time: int | None) -> bool:
    """True when ``pid`` is the same process as before and has not exited (zombies count as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rindex(")") + 2 :].split()
    if start_time is not None and int(fields[19]) != start_time:
        return False
    return fields[0] not in ("Z", "X")


def kill_checked(pid: int, start_time: int | None, sig: int) -> None:
    """Signal ``pid`` only if it is still the process started at ``start_time``."""
    if pid > 1 and proc_alive(pid, start_time):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_by_marker(execution_id: str, wait_seconds: float = 2.0) -> None:
    """SIGKILL every process whose environment carries this execution's marker, until none is left.

    The last resort without cgroups and without a pid namespace: it finds processes that left
    the process group (``setsid``, double fork). A killed process lingers for a moment, and a
    process may fork while we look, so repeat until a pass finds none.
    """
    give_up = time.monotonic() + wait_seconds
    while _kill_marked(execution_id) and time.monotonic() < give_up:
        time.sleep(0.02)


def _uid_pids(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry.name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        # Zombies are dead already (the supervisor reaps its own): killing them again is moot.
        if fields.get("State", "").split()[:1] in (["Z"], ["X"]):
            continue
        if uid in (int(v) for v in fields.get("Uid", "").split()):
            pids.append(int(entry.name))
    return pids


def kill_uid(uid: int, wait_seconds: float = 2.0) -> None:
    """SIGKILL every process of ``uid`` until none is left (the uid is one execution's alone).

    Unlike the marker, a uid cannot be shed by the user code (no capabilities): whatever a
    process of the execution became (``setsid``, a cleared environment), this finds it.
    """
    if uid <= 0:
        return
    give_up = time.monotonic() + wait_seconds
    while True:
        pids = [pid for pid in _uid_pids(uid) if pid != os.getpid()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if not pids or time.monotonic() > give_up:
            return
        time.sleep(0.02)


def _kill_marked(execution_id: str) -> int:
    needle = f"{MARKER_ENV}={execution_id}".encode()
    me = os.getpid()
    killed = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed


# --- cgroups ---------------------------------------------------------------------------------


def cgroup_dirs(cgroup: dict[str, Any] | None) -> list[Path]:
    """The distinct directories of an execution's cgroup (one on v2, one per controller on v1)."""
    if not cgroup:
        return []
    return sorted({Path(p) for p in cgroup["dirs"].values()})


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def cgroup_create(cgroup: dict[str, Any]) -> None:
    """Create the execution's cgroup and set its limits (the runtime picked the layout)."""
    dirs = cgroup["dirs"]
    for path in cgroup_dirs(cgroup):
        path.mkdir(parents=True, exist_ok=True)
    if cgroup["version"] == 2:
        base = Path(dirs["pids"])
        _write(base / "pids.max", str(cgroup["pids_max"]))
        _write(base / "memory.max", str(cgroup["memory_bytes"]))
        if (base / "memory.swap.max").exists():
            _write(base / "memory.swap.max", "0")
        if cgroup.get("cpu_quota_us") and "cpu" in dirs:
            _write(base / "cpu.max", f"{cgroup['cpu_quota_us']} {cgroup['cpu_period_us']}")
        return
    _write(Path(dirs["pids"]) / "pids.max", str(cgroup["pids_max"]))
    memory = Path(dirs["memory"])
    _write(memory / "memory.limit_in_bytes", str(cgroup["memory_bytes"]))
    # Without this, memory beyond the limit goes to swap instead of ending the execution.
    if (memory / "memory.memsw.limit_in_bytes").exists():
        with contextlib.suppress(OSError):
            _write(memory / "memory.memsw.limit_in_bytes", str(cgroup["memory_bytes"]))
    if cgroup.get("cpu_quota_us") and "cpu" in dirs:
        cpu = Path(dirs["cpu"])
        _write(cpu / "cpu.cfs_period_us", str(cgroup["cpu_period_us"]))
        _write(cpu / "cpu.cfs_quota_us", str(cgroup["cpu_quota_us"]))


def cgroup_join(cgroup: dict[str, Any], pid: int) -> None:
    """Move ``pid`` into every directory of the execution's cgroup."""
    for path in cgroup_dirs(cgroup):
        _write(path / "cgroup.procs", str(pid))


def cgroup_pids(cgroup: dict[str, Any] | None) -> set[int]:
    """Every process in the execution's cgroup."""
    pids: set[int] = set()
    for path in cgroup_dirs(cgroup):
        with contextlib.suppress(OSError):
            pids.update(int(line) for line in (path / "cgroup.procs").read_text().split())
    return pids


def cgroup_kill(cgroup: dict[str, Any] | None, rounds: int = 200) -> None:
    """SIGKILL everything in the cgroup until it is empty.

    cgroup v2 has ``cgroup.kill`` for this. On v1 a process may fork while we iterate, but the
    pids limit bounds how many there can be and a killed process forks no more, so repeating
    converges.
    """
    if not cgroup:
        return
    if cgroup["version"] == 2:
        kill_file = Path(cgroup["dirs"]["pids"]) / "cgroup.kill"
        if kill_file.exists():
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
    for _ in range(rounds):
        pids = cgroup_pids(cgroup)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def cgroup_stats(cgroup: dict[str, Any] | None) -> dict[str, Any]:
    """Peak memory (KiB), OOM kills and peak pids of the execution's cgroup, where the kernel tells."""
    stats: dict[str, Any] = {}
    if not cgroup:
        return stats
    dirs = {k: Path(v) for k, v in cgroup["dirs"].items()}

    def read(path: Path) -> str | None:
        try:
            return path.read_text()
        except OSError:
            return None

    def keyed(text: str | None, key: str) -> int | None:
        for line in (text or "").splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
        return None

    if cgroup["version"] == 2:
        peak = read(dirs["memory"] / "memory.peak")
        oom = keyed(read(dirs["memory"] / "memory.events"), "oom_kill")
    else:
        peak = read(dirs["memory"] / "memory.max_usage_in_bytes")
        oom = keyed(read(dirs["memory"] / "memory.oom_control"), "oom_kill")
    if peak and peak.strip().isdigit():
        stats["peak_memory_kb"] = int(peak) // 1024
    if oom is not None:
        stats["oom_kills"] = oom
    pids_peak = read(dirs["pids"] / "pids.peak")
    if pids_peak and pids_peak.strip().isdigit():
        stats["pids_peak"] = int(pids_peak)
    return stats


def cgroup_remove(cgroup: dict[str, Any] | None) -> None:
    """Kill what is left in the cgroup and remove its directories (idempotent)."""
    for path in cgroup_dirs(cgroup):
        if not path.exists():
            continue
        for _ in range(100):
            cgroup_kill(cgroup)
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                # EBUSY while the last processes are still exiting.
                time.sleep(0.02)


def _children_of(parent: int) -> list[int]:
    children = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
            children.append(int(entry.name))
    return children


# --- the supervisor --------------------------------------------------------------------------


#: How often the supervisor measures the output directory, and how many entries one look reads.
OUTPUT_CHECK_SECONDS = 1.0
_OUTPUT_SCAN_MAX_ENTRIES = 20_000


def output_over(directory: Path, *, max_entries: int, max_bytes: int) -> bool:
    """Whether the folder tree holds more than ``max_entries`` entries or ``max_bytes`` of disk.

    Counted as allocated blocks (a sparse file costs what it uses), links and special files not
    followed, folders walked with an explicit stack; stops counting once over, so a hostile tree
    costs at most one bounded walk per look.
    """
    entries = used = 0
    stack = [str(directory)]
    while stack:
        try:
            with os.scandir(stack.pop()) as found:
                for entry in found:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    used += info.st_blocks * 512
                    if entries > max_entries or used > max_bytes:
                        return True
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return False


def write_stop(directory: Path, reason: str) -> str:
    """Record why the execution is being stopped; returns the reason that holds (the first)."""
    path = directory / STOP_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return read_stop(directory) or reason
    with os.fdopen(fd, "w") as fh:
        fh.write(reason)
    return reason


def read_stop(directory: Path) -> str | None:
    """The reason the execution was stopped, if it was."""
    try:
        return (directory / STOP_FILE).read_text().strip() or None
    except OSError:
        return None


def write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    """Write JSON so that readers see the old file or the whole new one, never half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def _unclaim(ready_entry: Path) -> bool:
    """Take a ready runner's pool entry back, as a taker claims it: False when one did first."""
    try:
        ready_entry.unlink()
    except FileNotFoundError:
        return False
    return True


class _Supervisor:
    def __init__(self, launch: dict[str, Any]) -> None:
        self.launch = launch
        # A warm runner's folder is renamed when an execution takes it, at any moment: the
        # supervisor names its files relative to its working directory (the folder, which moves
        # with it), so a stop written under the new name is read, and exit.json lands there.
        self.dir = Path(".") if launch.get("warm") else Path(launch["dir"])
        self.cgroup: dict[str, Any] | None = launch.get("cgroup")
        self.stop_requested = False
        self.child: subprocess.Popen[bytes] | None = None
        self.child_start: int | None = None
        # Loaded before fork: the child must not load libraries between fork and exec.
        self.libc = ctypes.CDLL(None, use_errno=True)

    def _preexec(self) -> None:
        """Runs in the child between fork and exec, still with the supervisor's privileges."""
        launch = self.launch
        if self.cgroup:
            cgroup_join(self.cgroup, os.getpid())
        # Root without bubblewrap still gives user code a private network (a loopback, down).
        if launch.get("unshare") and self.libc.unshare(_CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWUTS) != 0:
            raise OSError(ctypes.get_errno(), "unshare failed")
        for name, value in launch.get("rlimits", {}).items():
            if value is not None:
                resource.setrlimit(_RLIMITS[name], (int(value), int(value)))
        # setuid programs (su, ping...) must not give user code back what we take away.
        self.libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if launch.get("uid") is not None:
            # Dropping to the uid clears the effective and permitted sets; the bounding and
            # ambient sets are emptied too, so user code holds no capability in any set.
            cap = 0
            while self.libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
                cap += 1
            self.libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        if launch.get("gid") is not None:
            os.setgroups([int(group) for group in launch.get("groups") or ()])
            os.setgid(int(launch["gid"]))
        if launch.get("uid") is not None:
            os.setuid(int(launch["uid"]))

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_requested = True

    def kill_tree(self) -> None:
        """Kill the user code and everything it started."""
        cgroup_kill(self.cgroup)
        if self.child is not None:
            # The child leads its own session; its pid is its process group's id.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.child.pid, signal.SIGKILL)
        if self.launch.get("uid") is not None and not self.launch.get("pid_namespace"):
            # The execution's own uid: whatever left the process group goes with it.
            kill_uid(int(self.launch["uid"]))
        if not self.cgroup and not self.launch.get("pid_namespace"):
            kill_by_marker(self.launch["execution_id"])
            # Orphans that left the process group were re-parented to us (the subreaper).
            for pid in _children_of(os.getpid()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        cgroup_kill(self.cgroup)

    def reap_others(self, block_seconds: float = 0.0) -> None:
        """Reap exited descendants that were re-parented to us, never the main child.

        Zombies still count against RLIMIT_NPROC and the pids limit, so they must not wait
        for init to get round to them.
        """
        give_up = time.monotonic() + block_seconds
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or not info.si_pid:
                if time.monotonic() >= give_up:
                    return
                time.sleep(0.02)
                continue
            if self.child is not None and info.si_pid == self.child.pid and self.child.returncode is None:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)

    def _warm_phase(
        self, warm: dict[str, Any], sock: socket.socket, child_fd: int | None, out_fd: int, max_output: int
    ) -> dict[str, Any] | None:
        """A warm runner's wait for its execution: announce it in the pool once the runner has
        imported the user code, then wait for the worker's go on the ``go`` FIFO (which only the
        worker can open) and pass the execution's variables on. None when the runner died, the
        runner stopped being wanted (stop, idle for ``idle_seconds``) or printed past the cap."""
        assert self.child is not None
        ready_entry = Path(warm["ready"])
        fifo = os.open(self.dir / WARM_GO_FIFO, os.O_RDWR | os.O_NONBLOCK)
        sock.setblocking(False)
        idle_until = time.monotonic() + float(warm["idle_seconds"])
        said = bytearray()
        heard = bytearray()
        ready = claimed = False
        watched = [sock.fileno(), fifo] + ([child_fd] if child_fd is not None else [])
        try:
            while True:
                info = os.waitid(os.P_PID, self.child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                if info is not None and info.si_pid:
                    return None
                self.reap_others()
                if self.stop_requested:
                    write_stop(self.dir, "warm-stopped")
                    return None
                if time.monotonic() >= idle_until:
                    if ready and not claimed and not _unclaim(ready_entry):
                        # A taker removed the entry first: the runner is its execution's, whose go
                        # is on the way (the taker may be waiting for the uid lock meanwhile).
                        claimed = True
                        idle_until = time.monotonic() + WARM_CLAIM_GRACE_SECONDS
                        continue
                    write_stop(self.dir, "warm-idle")
                    return None
                if os.fstat(out_fd).st_size >= max_output:
                    write_stop(self.dir, "output")
                    return None
                readable, _, _ = select.select(watched, [], [], 0.5)
                if sock.fileno() in readable and not ready:
                    try:
                        data = sock.recv(64)
                    except BlockingIOError:
                        data = b"-"
                    if not data:
                        return None
                    said += data
                    if said.startswith(channel.WARM_READY):
                        ready = True
                        watched.remove(sock.fileno())
                        # The pool's index: a taker claims this runner by removing the entry.
                        ready_entry.parent.mkdir(parents=True, exist_ok=True)
                        ready_entry.touch()
                    elif len(said) >= len(channel.WARM_READY):
                        return None
                if fifo in readable:
                    with contextlib.suppress(BlockingIOError):
                        heard += os.read(fifo, 1 << 16)
                    if b"\n" in heard and ready:
                        go = json.loads(bytes(heard).partition(b"\n")[0])
                        sock.setblocking(True)
                        sock.sendall(channel.go_message(go["env"]))
                        return go
                    if len(heard) > channel.WARM_GO_MAX_BYTES:
                        return None
        finally:
            os.close(fifo)
            sock.close()
            # Taken: the taker removed the entry already. Anything else: no taker may find it.
            ready_entry.unlink(missing_ok=True)

    def run(self) -> dict[str, Any]:
        launch = self.launch
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        # Orphans of the user code become our children (not init's): we can find, kill and reap them.
        self.libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        if self.cgroup:
            cgroup_create(self.cgroup)
        out_fd = os.open(launch["output"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        started = time.time()
        deadline = started + float(launch["timeout"])
        max_output = int(launch["max_output_bytes"])
        # The runner's result channel: a pipe only the runner gets (it moves the write end to a
        # close-on-exec fd before importing user code); stdout and stderr are only logs.
        result_fd, result_write_fd, env = channel.pipe_for_runner(launch["env"])
        os.set_blocking(result_fd, False)
        response = channel.ResponseCollector(max_bytes=max_output)
        passed = [result_write_fd]
        warm = launch.get("warm")
        warm_socket = None
        if warm:
            warm_socket, runner_end = socket.socketpair()
            passed.append(runner_end.fileno())
            env = {**env, channel.WARM_FD_ENV: str(runner_end.fileno())}
        self.child = subprocess.Popen(
            launch["argv"],
            stdin=subprocess.DEVNULL,
            stdout=out_fd,
            stderr=out_fd,
            cwd=launch["cwd"],
            env=env,
            pass_fds=tuple(passed),
            start_new_session=True,
            # Safe here: the supervisor is single-threaded, so no lock is held across the fork.
            preexec_fn=self._preexec,
            close_fds=True,
        )
        os.close(result_write_fd)
        self.child_start = proc_start_time(self.child.pid)
        # Readable the moment the child exits: the loop below wakes for that at once, instead of
        # noticing it on its next look (the end reaches exit.json, and the engine, sooner).
        try:
            child_fd: int | None = os.pidfd_open(self.child.pid)
        except OSError:  # a kernel before 5.3: the loop's 50 ms looks still see the exit
            child_fd = None
        watched = [result_fd] + ([child_fd] if child_fd is not None else [])
        write_json_atomic(self.dir / CHILD_FILE, {"pid": self.child.pid, "start_time": self.child_start})
        reason: str | None = None
        if warm_socket is not None:
            runner_end.close()
            go = self._warm_phase(warm, warm_socket, child_fd, out_fd, max_output)
            if go is not None:
                # The execution is ours now: its clock (its folder is still our working directory).
                launch["output_dir"] = "output"
                started = time.time()
                deadline = started + float(go["timeout"])
            else:
                reason = read_stop(self.dir) or write_stop(self.dir, "warm-ended")
                self.kill_tree()
        # The output directory is on disk: a program must not fill it (result files are capped
        # when they are taken; this bounds what can pile up before that, with room to spare).
        limits = launch.get("output_limits")
        output_dir = Path(launch["output_dir"]) if launch.get("output_dir") else None
        next_output_check = time.monotonic() + OUTPUT_CHECK_SECONDS
        while True:
            # Look without reaping: a zombie keeps its pid (and process group id) reserved, so
            # killing the group below cannot hit an unrelated process that reused the number.
            info = os.waitid(os.P_PID, self.child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None and info.si_pid:
                break
            self.reap_others()
            if reason is None:
                if self.stop_requested:
                    reason = read_stop(self.dir) or write_stop(self.dir, "cancel")
                elif time.time() >= deadline:
                    reason = write_stop(self.dir, "timeout")
                elif os.fstat(out_fd).st_size >= max_output:
                    reason = write_stop(self.dir, "output")
                elif limits and output_dir is not None and time.monotonic() >= next_output_check:
                    next_output_check = time.monotonic() + OUTPUT_CHECK_SECONDS
                    max_entries = min(int(limits[0]) + 1000, _OUTPUT_SCAN_MAX_ENTRIES)
                    if output_over(output_dir, max_entries=max_entries, max_bytes=2 * int(limits[2]) + int(limits[1])):
                        reason = write_stop(self.dir, "output-files")
                if reason is not None:
                    self.kill_tree()
            # Read as it comes, so a response larger than the pipe's buffer never blocks the runner.
            readable, _, _ = select.select(watched, [], [], 0.05)
            if result_fd in readable and channel.drain(result_fd, response):
                # End of file: nobody holds the write end any more; from now on only the exit wakes us.
                watched.remove(result_fd)
        # The runner has exited: its response is in the pipe now. Whatever anyone writes from
        # here on does not count (the collector keeps only the first line anyway).
        channel.drain(result_fd, response)
        os.close(result_fd)
        if child_fd is not None:
            os.close(child_fd)
        # The main program has ended; whatever it left running in the background ends too.
        self.kill_tree()
        _, status, rusage = os.wait4(self.child.pid, 0)
        self.child.returncode = os.waitstatus_to_exitcode(status)
        self.kill_tree()
        self.reap_others(block_seconds=1.0)
        stats = cgroup_stats(self.cgroup)
        cgroup_remove(self.cgroup)
        output_size = os.fstat(out_fd).st_size
        os.close(out_fd)
        reason = read_stop(self.dir) or reason
        peak = stats.get("peak_memory_kb") or (rusage.ru_maxrss or None)
        return {
            "exit_code": self.child.returncode,
            "reason": reason,
            "oom_killed": bool(stats.get("oom_kills")),
            "peak_memory_kb": peak,
            "pids_peak": stats.get("pids_peak"),
            "output_bytes": output_size,
            "response": channel.response_to_json(response.response()),
            "started_at": started,
            "finished_at": time.time(),
        }


def main(argv: Iterable[str]) -> int:
    args = list(argv)
    launch = json.loads(Path(args[0]).read_text())
    supervisor = _Supervisor(launch)
    try:
        outcome = supervisor.run()
    except BaseException as exc:
        # A warm runner's folder moved when an execution took it: write where it is now.
        directory = supervisor.dir
        # A platform failure (cgroup, exec...): record it so poll() and the logs say what happened.
        supervisor.kill_tree()
        cgroup_remove(supervisor.cgroup)
        error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError), open(launch["output"], "a") as out:
            out.write(f"[platform] the execution could not run: {error}\n")
        write_json_atomic(directory / EXIT_FILE, {"exit_code": None, "reason": read_stop(directory), "error": error})
        raise
    write_json_atomic(supervisor.dir / EXIT_FILE, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
