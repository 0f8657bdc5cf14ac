"""The main process of a Docker execution: the runner's supervisor inside the container.

``python -m planqk_runtime.container ALARM_SECONDS MAX_RESPONSE_BYTES RESULT_DIR
[--output OUTPUT_DIR MAX_FILES MAX_FILE_BYTES MAX_TOTAL_BYTES] -- RUNNER...``

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
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
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


def main(argv: Sequence[str]) -> int:
    alarm_seconds, max_bytes, result_dir = int(argv[0]), int(argv[1]), Path(argv[2])
    rest = list(argv[3:])
    output: tuple[Path, OutputLimits] | None = None
    if rest[:1] == ["--output"]:
        output = (Path(rest[1]), OutputLimits.from_args(rest[2:5]))
        rest = rest[5:]
    runner = rest[1:] if rest[:1] == ["--"] else rest
    os.dup2(1, 2)
    _non_dumpable()
    alarmed = []
    signal.signal(signal.SIGALRM, lambda signum, frame: alarmed.append(signum))
    signal.alarm(alarm_seconds)
    read_fd, write_fd, env = channel.pipe_for_runner(os.environ)
    collector = channel.ResponseCollector(max_bytes=max_bytes)
    child = subprocess.Popen(runner, env=env, pass_fds=(write_fd,), stdin=subprocess.DEVNULL)
    os.close(write_fd)
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
