"""The main process of a Docker execution: the runner's supervisor inside the container.

``python -m planqk_runtime.container ALARM_SECONDS MAX_RESPONSE_BYTES RESULT_DIR
[--warm IDLE_SECONDS SOCKET_PATH] [--output OUTPUT_DIR MAX_FILES MAX_FILE_BYTES MAX_TOTAL_BYTES]
-- RUNNER...``

Standard library only. In a container every process of the execution has the same uid, so no
file or pipe can be out of user code's reach while it runs. What can be arranged is the order:

1. this process points stderr at stdout (one stream in write order, as the local runtime's log
   file), makes itself non-dumpable (processes of its uid cannot open its file descriptors
   through ``/proc`` or ptrace it) and arms an alarm: the deadline holds when nobody polls;
2. it starts the runner with a result pipe (:mod:`planqk_runtime.channel`) and reads it while
   the runner runs;
3. once the runner has exited it kills every other process of the container and waits until
   they are gone, so from then on nobody but this process is left to write anything;
4. only then it empties ``RESULT_DIR`` (a mount of its own; whatever user code put there is
   removed) and writes the first response of the pipe to ``RESULT_DIR/response.json``, and
   exits with the runner's exit status. The platform reads that file after the container ended.
5. with ``--output``, it then copies the result files the program left in ``OUTPUT_DIR`` (a
   tmpfs, bounded like memory) to ``RESULT_DIR/files`` under :mod:`planqk_runtime.outputs`'
   rules and caps, and prints a ``[platform]`` line for each file it refused.

With ``--warm`` the container is a *warm* one (``runtimes.docker``, issue 17): created and started
before its execution exists, with the limits of a cold one. The runner starts in warm mode on a
socket pair with this process (:class:`planqk_runtime.channel.WarmChannel`): it imports the user
code, says ready and waits. Only then this process listens on ``SOCKET_PATH`` (in a folder the
worker binds in; the name appears once it listens, which is what the worker reads as ready) and
takes ONE connection: the worker's ``go {"env": {...}}`` line, after it wrote the execution's
input. This process, not the runner, listens because it owns the deadline: the alarm counts
``IDLE_SECONDS`` until the go (nobody took the container: everything is killed, exit
:data:`WARM_UNUSED_EXIT`) and ``ALARM_SECONDS`` from the go, so the execution's time starts at
the take, not at the container's start. It hands the variables to the runner, answers
``started`` to the worker and goes on as in 2-5 above.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from planqk_runtime import channel
from planqk_runtime.outputs import OutputLimits, collect, copy_out
from planqk_runtime.protocol import FinalResponse

RESPONSE_FILE = "response.json"
#: Where in ``RESULT_DIR`` the result files are copied (written after everything else ended).
FILES_DIR = "files"
_PR_SET_DUMPABLE = 4
_ALARM_EXIT = 128 + signal.SIGALRM
_KILL_WAIT_SECONDS = 5.0
#: A warm container nobody took (idle past its time, or no valid go) exits with this.
WARM_UNUSED_EXIT = 3
#: What the worker hears once the runner has its variables and the deadline runs.
WARM_STARTED = b"started\n"
# How long the worker may take to send its go line once it has connected: it connects first
# (its check that the container is alive and the listener is the container's), then renames the
# folder and the container and writes the input, which a loaded engine or host can make slow.
_GO_READ_SECONDS = 60.0


def _non_dumpable() -> None:
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def _others() -> list[int]:
    """Live processes of the container other than its init and this one."""
    me, found = os.getpid(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in (1, me):
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] not in "ZX":
            found.append(int(entry.name))
    return found


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def kill_everything_else() -> bool:
    """SIGKILL every other process this one may signal until none is alive; False if some stay."""
    give_up = time.monotonic() + _KILL_WAIT_SECONDS
    while True:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(-1, signal.SIGKILL)  # every process we may signal, except init and ourselves
        _reap()
        if not _others():
            return True
        if time.monotonic() > give_up:
            return False
        time.sleep(0.01)


def write_response(result_dir: Path, response: FinalResponse | None) -> None:
    """Replace whatever is in ``result_dir`` by the response (nothing when there is none)."""
    for entry in os.scandir(result_dir):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    if response is None:
        return
    tmp = result_dir / f".{RESPONSE_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(channel.response_to_json(response), fh)
    os.replace(tmp, result_dir / RESPONSE_FILE)


def copy_outputs(output_dir: Path, result_dir: Path, limits: OutputLimits) -> None:
    """Copy the result files out of the output tmpfs (it goes with the container) into
    ``RESULT_DIR/files``, by :mod:`planqk_runtime.outputs`' rules; say what was refused."""
    files, notes = collect(output_dir, limits)
    copy_out(files, result_dir / FILES_DIR)
    for note in notes:
        _say(note)


def _listen(path: str) -> socket.socket:
    """Listen on ``path``: bound under a temporary name and renamed, so the name appears only once
    a connection can be taken (the worker's sign that the container is ready)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    pending = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pending)
    server.bind(pending)
    # Only this container's uid (and the worker, root) may connect.
    os.chmod(pending, 0o600)
    server.listen(1)
    os.rename(pending, path)
    return server


def _read_go(connection: socket.socket) -> dict[str, str] | None:
    """The variables of the worker's go line, or None (closed, too large, slow or malformed)."""
    connection.settimeout(_GO_READ_SECONDS)
    buffer = bytearray()
    try:
        while b"\n" not in buffer:
            data = connection.recv(1 << 16)
            if not data:
                return None
            buffer += data
            if len(buffer) > channel.WARM_GO_MAX_BYTES:
                return None
    except OSError:
        return None
    line = bytes(buffer).partition(b"\n")[0]
    if not line.startswith(channel.WARM_GO):
        return None
    return channel.parse_go(line[len(channel.WARM_GO) :])


def warm_wait(
    runner_socket: socket.socket, path: str, child: subprocess.Popen[bytes], alarmed: list[int]
) -> tuple[dict[str, str], socket.socket] | None:
    """Wait for the runner's ready, then for the worker's go on ``path``: the execution's
    variables and the worker's connection (to answer), or None when the runner ended, the idle
    alarm rang or the go was not one."""
    said = bytearray()
    while not said.startswith(channel.WARM_READY):
        if alarmed or child.poll() is not None:
            return None
        readable, _, _ = select.select([runner_socket], [], [], 0.2)
        if readable:
            try:
                data = runner_socket.recv(64)
            except OSError:
                return None
            if not data:
                return None
            said += data
            if len(said) >= len(channel.WARM_READY) and not said.startswith(channel.WARM_READY):
                return None
    try:
        server = _listen(path)
    except OSError as exc:
        _say(f"the warm container could not listen for its execution: {exc}")
        return None
    try:
        while True:
            if child.poll() is not None:
                return None
            # Idle time over: a worker that connected a moment ago still gets the container.
            readable, _, _ = select.select([server], [], [], 0 if alarmed else 0.2)
            if not readable:
                if alarmed:
                    return None
                continue
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            env = _read_go(connection)
            if env is None:
                # Only the worker sends a go; anything else (user code of this very container
                # connecting to its own socket) ends the container unused.
                connection.close()
                return None
            return env, connection
    finally:
        server.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


def _warm_go(
    runner_socket: socket.socket, path: str, child: subprocess.Popen[bytes], alarmed: list[int], alarm_seconds: int
) -> bool:
    """The warm phase: True once the runner has its execution's variables and the execution's
    deadline runs; False when nobody took the container (see :func:`warm_wait`)."""
    try:
        taken = warm_wait(runner_socket, path, child, alarmed)
        if taken is None:
            return False
        go_env, connection = taken
        # The execution's own time starts now, at the take; an idle alarm that rang a moment
        # ago is superseded (the worker has its go answered below, the container is its).
        signal.alarm(alarm_seconds)
        alarmed.clear()
        # OSError: the runner died meanwhile; its exit is reported as any runner's.
        with contextlib.suppress(OSError):
            runner_socket.sendall(channel.go_message(go_env))
        with contextlib.suppress(OSError):
            connection.sendall(WARM_STARTED)
        connection.close()
        return True
    finally:
        runner_socket.close()


def main(argv: Sequence[str]) -> int:
    alarm_seconds, max_bytes, result_dir = int(argv[0]), int(argv[1]), Path(argv[2])
    rest = list(argv[3:])
    output: tuple[Path, OutputLimits] | None = None
    warm: tuple[int, str] | None = None
    while rest[:1] in (["--output"], ["--warm"]):
        if rest[0] == "--output":
            output = (Path(rest[1]), OutputLimits.from_args(rest[2:5]))
            rest = rest[5:]
        else:
            warm = (int(rest[1]), rest[2])
            rest = rest[3:]
    runner = rest[1:] if rest[:1] == ["--"] else rest
    os.dup2(1, 2)
    _non_dumpable()
    alarmed = []
    signal.signal(signal.SIGALRM, lambda signum, frame: alarmed.append(signum))
    # A warm container's first alarm is its idle time; the execution's comes with the go.
    signal.alarm(warm[0] if warm is not None else alarm_seconds)
    read_fd, write_fd, env = channel.pipe_for_runner(os.environ)
    collector = channel.ResponseCollector(max_bytes=max_bytes)
    runner_socket: socket.socket | None = None
    if warm is not None:
        runner_socket, runner_end = socket.socketpair()
        env[channel.WARM_FD_ENV] = str(runner_end.fileno())
        child = subprocess.Popen(runner, env=env, pass_fds=(write_fd, runner_end.fileno()), stdin=subprocess.DEVNULL)
        runner_end.close()
    else:
        child = subprocess.Popen(runner, env=env, pass_fds=(write_fd,), stdin=subprocess.DEVNULL)
    os.close(write_fd)
    if (
        runner_socket is not None
        and warm is not None
        and not _warm_go(runner_socket, warm[1], child, alarmed, alarm_seconds)
    ):
        os.close(read_fd)
        kill_everything_else()
        with contextlib.suppress(ChildProcessError):
            child.wait()
        write_response(result_dir, None)
        return WARM_UNUSED_EXIT
    channel.collect(read_fd, collector, done=lambda: child.poll() is not None or bool(alarmed))
    os.close(read_fd)
    alone = kill_everything_else()
    if alarmed:
        write_response(result_dir, None)
        _say("the execution passed its deadline and was stopped")
        return _ALARM_EXIT
    returncode = child.wait()
    if not alone:
        write_response(result_dir, None)
        _say("processes of the execution could not be stopped; its result is not kept")
        return 128 + signal.SIGKILL
    write_response(result_dir, collector.response())
    if output is not None:
        # Only now: every other process is gone, nobody can change the output directory any more.
        copy_outputs(output[0], result_dir, output[1])
    return returncode if returncode >= 0 else 128 - returncode


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(f"[platform] {text}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
