"""The result channel: how the runner hands its final response to whoever started it.

Standard library only, POSIX. stdout and stderr are logs: user code, its threads and every
process it starts can write there, also after the runner has finished. So the runner's answer
travels on a channel of its own:

- whoever starts the runner creates a pipe, passes its write end to the runner (``pass_fds``)
  and names it in :data:`RESULT_FD_ENV`;
- the runner takes it over before it imports user code (:func:`take_over`): it moves it to a
  private, close-on-exec descriptor and closes the original, so no program the user code
  executes inherits it, and it removes the variable from its environment;
- after ``run()`` returned the runner writes exactly one response (the same text as its final
  stdout line) with :meth:`ResultChannel.send`, only from the process that took the channel
  over (an ``os.fork()`` child returning through the runner writes nothing) and only when the
  descriptor is still the pipe it took over (user code may have closed or replaced it);
- the reader (:class:`ResponseCollector`) keeps the FIRST complete line and ignores everything
  after it, and decides only once the runner process itself has exited. A process forked by
  user code inherits even a close-on-exec descriptor, but whatever it writes after the runner
  exited comes after the runner's response and is ignored.

Without :data:`RESULT_FD_ENV` (``python -m planqk_runtime`` by hand, ``docker run``) there is no
channel and the runner behaves exactly as the contract says: its final stdout line is the answer.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from planqk_runtime.protocol import KIND_ERROR, KIND_RESULT, FinalResponse, parse_output_line

#: The environment variable naming the write end of the result pipe (a file descriptor number).
RESULT_FD_ENV = "PLANQK_RESULT_FD"
#: Responses larger than this are not kept; the reader reports RESULT_TOO_LARGE instead.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: The error code of a response over the reader's cap.
RESULT_TOO_LARGE = "job:result-too-large"
# The runner's private copy sits high, out of reach of programs that close "their" low fds.
_PRIVATE_FD_MIN = 1000
_READ_BYTES = 1 << 16


class ResultChannel:
    """The runner's end of the result pipe (see the module docstring)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pid = os.getpid()
        stat = os.fstat(fd)
        self._identity = (stat.st_dev, stat.st_ino)

    def intact(self) -> bool:
        """Whether the descriptor is still the pipe taken over, in the process that took it."""
        if os.getpid() != self.pid:
            return False
        try:
            stat = os.fstat(self.fd)
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino) == self._identity

    def send(self, line: str) -> bool:
        """Write the one response line; False when it could not be delivered."""
        if not self.intact():
            if os.getpid() == self.pid:
                with contextlib.suppress(Exception):
                    sys.stderr.write(
                        f"[runner] the program closed or replaced the result channel (fd {self.fd}); "
                        "its result cannot be handed over\n"
                    )
                    sys.stderr.flush()
            return False
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        try:
            os.set_blocking(self.fd, True)
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        return True


def _take_private_fd(env: MutableMapping[str, str], name: str, what: str) -> int | None:
    """The descriptor named by ``env[name]`` (removed from ``env``), moved to a private,
    close-on-exec number; None without the variable or when it names no usable descriptor."""
    raw = env.pop(name, None)
    if raw is None:
        return None
    try:
        import fcntl

        fd = int(raw)
        try:
            private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _PRIVATE_FD_MIN)
        except OSError:
            # RLIMIT_NOFILE below the preferred number: any free one will do.
            private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
        os.close(fd)
        return private
    except (ImportError, ValueError, OSError) as exc:
        with contextlib.suppress(Exception):
            sys.stderr.write(f"[runner] {name}={raw!r} is not a usable {what}: {exc}\n")
        return None


def take_over(environ: MutableMapping[str, str] | None = None) -> ResultChannel | None:
    """The runner's channel from :data:`RESULT_FD_ENV`, moved to a private fd; None without one."""
    fd = _take_private_fd(os.environ if environ is None else environ, RESULT_FD_ENV, "result channel")
    return None if fd is None else ResultChannel(fd)


class ResponseCollector:
    """Collects what arrives on the result pipe; keeps the first complete line only.

    Keep feeding it everything read, so the writer never blocks on a full pipe; decide
    (:meth:`response`) only after the runner process has exited.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self.max_bytes = max(1, int(max_bytes))
        self._buffer = bytearray()
        self._line: bytes | None = None
        self.too_large = False

    @property
    def complete(self) -> bool:
        """Whether the first line is complete (or over the cap): nothing later counts."""
        return self._line is not None or self.too_large

    def feed(self, data: bytes) -> None:
        if self.complete or not data:
            return
        end = data.find(b"\n")
        self._buffer += data if end < 0 else data[:end]
        if len(self._buffer) > self.max_bytes:
            self.too_large = True
            self._buffer = bytearray()
        elif end >= 0:
            self._line = bytes(self._buffer)
            self._buffer = bytearray()

    def response(self) -> FinalResponse | None:
        """The runner's response, or None when no complete, well-formed one arrived."""
        if self.too_large:
            detail = f"The program's result is larger than the {self.max_bytes} bytes the platform accepts."
            return FinalResponse(KIND_ERROR, {"code": RESULT_TOO_LARGE, "detail": detail})
        if self._line is None:
            return None
        kind, payload = parse_output_line(self._line.decode("utf-8", errors="replace"))
        if kind not in (KIND_RESULT, KIND_ERROR):
            return None
        return FinalResponse(kind, payload)


def drain(fd: int, collector: ResponseCollector) -> bool:
    """Feed everything readable now from the (non-blocking) ``fd``; True at end of file."""
    while True:
        try:
            data = os.read(fd, _READ_BYTES)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if not data:
            return True
        collector.feed(data)


def collect(
    fd: int,
    collector: ResponseCollector,
    *,
    done: Callable[[], bool],
    interval: float = 0.05,
) -> None:
    """Read ``fd`` into ``collector`` until ``done()`` (the runner has exited), then once more.

    Not until end of file: a process user code forked may hold the write end for ever.
    """
    os.set_blocking(fd, False)
    eof = False
    while not done():
        if eof:
            select.select([], [], [], interval)
            continue
        readable, _, _ = select.select([fd], [], [], interval)
        if readable:
            eof = drain(fd, collector)
    drain(fd, collector)


def pipe_for_runner(env: Mapping[str, str]) -> tuple[int, int, dict[str, str]]:
    """A result pipe for a runner about to start: ``(read_fd, write_fd, env)``.

    Pass ``write_fd`` in ``pass_fds``, start the runner with ``env``, then close ``write_fd``.
    """
    read_fd, write_fd = os.pipe()
    return read_fd, write_fd, {**env, RESULT_FD_ENV: str(write_fd)}


def response_to_json(response: FinalResponse | None) -> dict[str, Any] | None:
    """A response as stored JSON (the local supervisor's ``exit.json``, the Docker result file)."""
    return None if response is None else {"kind": response.kind, "payload": response.payload}


def response_from_json(value: Any) -> FinalResponse | None:
    """The response :func:`response_to_json` stored; None for anything not of that shape."""
    if not isinstance(value, dict) or value.get("kind") not in (KIND_RESULT, KIND_ERROR):
        return None
    payload = value.get("payload")
    if value["kind"] == KIND_RESULT:
        if not isinstance(payload, dict) or "result" not in payload:
            return None
        return FinalResponse(KIND_RESULT, {"result": payload["result"], "metadata": payload.get("metadata")})
    if not isinstance(payload, dict) or not isinstance(payload.get("code"), str):
        return None
    detail = payload.get("detail", "")
    return FinalResponse(KIND_ERROR, {"code": payload["code"], "detail": detail if isinstance(detail, str) else ""})


# --- the warm channel ------------------------------------------------------------------------
#
# A warm runner (the local runtime's pool, issue 17) is started before its execution exists: it
# imports the user code, says "ready" on a socket of its own and waits for exactly one "go"
# carrying the execution's environment, then runs once and exits like any runner. The socket is
# taken over like the result channel (a private, close-on-exec descriptor, the variable removed)
# and closed before run() is called, so nothing the execution starts can talk to the supervisor.

#: The environment variable naming the runner's end of the warm socket.
WARM_FD_ENV = "PLANQK_WARM_FD"
#: What a warm runner sends once the user code is imported.
WARM_READY = b"ready\n"
#: The prefix of the one message a warm runner waits for.
WARM_GO = b"go "
#: A go message larger than this is refused (it holds the execution's variables only).
WARM_GO_MAX_BYTES = 4 * 1024 * 1024


class WarmChannel:
    """The runner's end of the warm socket (see above)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def wait_for_go(self) -> dict[str, str] | None:
        """Say ready, then block until the go message: the execution's variables, or None when
        the supervisor went away or sent anything else (the runner then exits without running)."""
        buffer = bytearray()
        try:
            os.write(self.fd, WARM_READY)
            while b"\n" not in buffer and len(buffer) <= WARM_GO_MAX_BYTES:
                data = os.read(self.fd, _READ_BYTES)
                if not data:
                    return None
                buffer += data
        except OSError:
            return None
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        line = bytes(buffer).partition(b"\n")[0]
        if not line.startswith(WARM_GO):
            return None
        return parse_go(line[len(WARM_GO) :])


def parse_go(data: bytes) -> dict[str, str] | None:
    """The variables of a go message (``{"env": {...}}``), or None when it is not one."""
    import json

    try:
        message = json.loads(data)
    except ValueError:
        return None
    env = message.get("env") if isinstance(message, dict) else None
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        return None
    return env


def go_message(env: Mapping[str, str]) -> bytes:
    """The go line a supervisor sends its warm runner."""
    import json

    return WARM_GO + json.dumps({"env": dict(env)}).encode("utf-8") + b"\n"


def take_over_warm(environ: MutableMapping[str, str] | None = None) -> WarmChannel | None:
    """The warm socket from :data:`WARM_FD_ENV`, moved to a private fd; None for a cold runner."""
    fd = _take_private_fd(os.environ if environ is None else environ, WARM_FD_ENV, "warm channel")
    return None if fd is None else WarmChannel(fd)
