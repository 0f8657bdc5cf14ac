"""Waiting for a local execution without a clock: inotify on its folder, a pidfd on its supervisor.

What the engine waits for is already on disk, written by processes that outlive the worker
(:mod:`runtimes.local.supervisor`): the user code appends to ``output.log``, the supervisor
writes ``exit.json`` (``os.replace``: a move into the folder) and the ``stop`` file, and then
exits. So nothing has to be told to the worker: it watches the execution's folder (inotify via
``inotify_simple``) and holds a pidfd of the supervisor (readable once it exited, even when it
was killed without writing ``exit.json``). A worker that restarts and reattaches sets up the
same two from the stored handle; no pipe or socket has to survive it.

Events are only wake-ups: after every one the state is read again from the files and
``/proc``, so an event that belongs to another execution (one inotify instance serves every
execution a process follows), a lost event (the queue overflowed) or one that came before the
watch existed costs at most a look, never a missed end. A program that prints without pause
wakes its follower at most every :data:`OUTPUT_WAKE_GAP_SECONDS`; its end wakes it at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from inotify_simple import INotify
from inotify_simple import flags as in_flags

from runtimes.base import check_id
from runtimes.local import supervisor as sup
from runtimes.local.handles import LocalExecutionHandle

logger = logging.getLogger(__name__)

#: A follower is woken for new output at most this often (its end wakes it at once).
OUTPUT_WAKE_GAP_SECONDS = 0.02
#: Watches kept per process; beyond it the oldest go (a follower that lost its job never cleans up).
MAX_WATCHES = 256
# Writes to output.log, exit.json and stop arriving, the folder going away.
_MASK = (
    in_flags.MODIFY
    | in_flags.CREATE
    | in_flags.MOVED_TO
    | in_flags.CLOSE_WRITE
    | in_flags.DELETE_SELF
    | in_flags.MOVE_SELF
    | in_flags.ONLYDIR
)


@dataclass
class _Watch:
    wd: int
    pidfd: int | None
    last_output_wake: float = field(default=0.0)


class Waiter:
    """The waits of one process: one inotify instance, a watch and a pidfd per followed execution."""

    def __init__(self, executions_dir: Path) -> None:
        self.executions_dir = executions_dir
        self._inotify: INotify | None = None
        self._owner_pid = 0
        self._watches: dict[str, _Watch] = {}
        # Two threads following executions must not read each other's events half-way.
        self._lock = threading.Lock()

    # --- the public part ----------------------------------------------------------------------

    def wait(self, handle: LocalExecutionHandle, timeout: float, *, offset: int | None) -> bool:
        """Wait as :meth:`runtimes.base.Runtime.wait` says; False when events cannot be had here
        (the caller then waits on the clock)."""
        give_up = time.monotonic() + max(0.0, float(timeout))
        watch = self._watch(handle)
        if watch is None:
            return False
        exec_dir = Path(handle.dir)
        output = exec_dir / "output.log"
        while True:
            if self._ended(handle, watch, exec_dir):
                return True
            now = time.monotonic()
            if offset is not None and self._unread(output, offset, int(handle.max_output_bytes)):
                wake_at = watch.last_output_wake + OUTPUT_WAKE_GAP_SECONDS
                if now >= wake_at:
                    watch.last_output_wake = now
                    return True
                # Output is waiting but the follower was just woken: only the end counts until then.
                self._block(min(wake_at, give_up) - now, watch, output_events=False)
                if time.monotonic() >= give_up:
                    return True
                continue
            if now >= give_up:
                return True
            self._block(give_up - now, watch, output_events=True)

    def forget(self, execution_id: str) -> None:
        """Drop the watch and the pidfd of an execution (at its cleanup); idempotent."""
        with self._lock:
            watch = self._watches.pop(execution_id, None)
            if watch is not None:
                self._close(watch)

    # --- the parts ----------------------------------------------------------------------------

    def _notify(self) -> INotify | None:
        # Per process: a Celery pool forks its children after the parent may have used this object,
        # and a shared inotify instance would hand one child's events to another.
        if self._inotify is None or self._owner_pid != os.getpid():
            self._inotify, self._watches = None, {}
            try:
                self._inotify = INotify(nonblocking=True)
            except OSError as exc:  # EMFILE: the user's inotify instances are used up
                logger.warning("inotify is not available (%s): executions are followed on the clock", exc)
                return None
            self._owner_pid = os.getpid()
        return self._inotify

    def _watch(self, handle: LocalExecutionHandle) -> _Watch | None:
        exec_dir = Path(handle.dir)
        # Only a folder of this runtime's own: a handle edited in the database names no other path
        # (its execution id is a plain name, its folder the one that name gives).
        try:
            execution_id = check_id(handle.execution_id, "execution id")
        except ValueError:
            return None
        if exec_dir != self.executions_dir / execution_id:
            return None
        with self._lock:
            notify = self._notify()
            if notify is None:
                return None
            known = self._watches.get(handle.execution_id)
            if known is not None:
                return known
            self._prune()
            try:
                wd = notify.add_watch(exec_dir, _MASK)
            except OSError:
                return None  # the folder is gone: poll() tells the end
            watch = _Watch(wd=wd, pidfd=self._pidfd(handle))
            self._watches[handle.execution_id] = watch
            return watch

    @staticmethod
    def _pidfd(handle: LocalExecutionHandle) -> int | None:
        """A pidfd of the execution's supervisor, if it is still the process the handle names."""
        if not handle.pid or handle.pid <= 1:
            return None
        try:
            fd = os.pidfd_open(int(handle.pid))
        except OSError:
            return None
        # Checked after opening: the pidfd holds the process, so the number cannot be reused
        # between this check and the wait.
        if not sup.proc_alive(int(handle.pid), handle.start_time):
            os.close(fd)
            return None
        return fd

    def _prune(self) -> None:
        """Close watches of executions whose folder is gone, and the oldest beyond MAX_WATCHES."""
        for execution_id in list(self._watches):
            if not (self.executions_dir / execution_id).exists():
                self._close(self._watches.pop(execution_id))
        while len(self._watches) >= MAX_WATCHES:
            self._close(self._watches.pop(next(iter(self._watches))))

    def _close(self, watch: _Watch) -> None:
        if watch.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(watch.pidfd)
            watch.pidfd = None
        if self._inotify is not None and self._owner_pid == os.getpid():
            # Already gone (IN_IGNORED) when the folder was removed.
            with contextlib.suppress(OSError):
                self._inotify.rm_watch(watch.wd)

    def _ended(self, handle: LocalExecutionHandle, watch: _Watch, exec_dir: Path) -> bool:
        if (exec_dir / sup.EXIT_FILE).exists() or not exec_dir.exists():
            return True
        if watch.pidfd is not None:
            readable, _, _ = select.select([watch.pidfd], [], [], 0)
            return bool(readable)
        # No pidfd: the supervisor was gone when the watch was made, or the handle has no pid.
        return not handle.pid or not sup.proc_alive(int(handle.pid), handle.start_time)

    @staticmethod
    def _unread(output: Path, offset: int, cap: int) -> bool:
        try:
            size = output.stat().st_size
        except OSError:
            return False
        # Past the cap nothing more is read (read_output stops there): no reason to wake.
        return min(size, cap) > offset

    def _block(self, seconds: float, watch: _Watch, *, output_events: bool) -> None:
        """Sleep until an event (the folder changed, the supervisor exited) or ``seconds`` passed."""
        if seconds <= 0:
            return
        fds: list[int] = [watch.pidfd] if watch.pidfd is not None else []
        notify = self._inotify
        if output_events and notify is not None:
            fds.append(notify.fileno())
        elif notify is not None:
            # exit.json arrives moments before the supervisor's exit; without a pidfd look often.
            seconds = seconds if watch.pidfd is not None else min(seconds, OUTPUT_WAKE_GAP_SECONDS)
        if not fds:
            time.sleep(seconds)
            return
        try:
            select.select(fds, [], [], seconds)
        except (OSError, ValueError):
            time.sleep(min(seconds, OUTPUT_WAKE_GAP_SECONDS))
        if notify is not None and output_events:
            with self._lock, contextlib.suppress(OSError):
                # Only wake-ups: the state is read again from the files, whoever's events these were.
                notify.read(timeout=0)
