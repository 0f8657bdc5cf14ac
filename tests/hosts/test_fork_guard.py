"""A fork of the worker's pool never lands in the middle of a host heartbeat.

The heartbeat beats from a thread of the worker's main process, and that process forks the
pool's children. A child forked while the thread held a lock (an import lock above all: the
beat imports the runtimes through the warm reader) inherits it held and hangs at its first use:
a job claimed and never started. Seen about one worker start in four in a benchmark, with gdb.
"""

from __future__ import annotations

import os
import threading

from hosts.worker import FORK_GUARD, HostHeartbeat


def test_a_fork_waits_for_the_beat_in_progress() -> None:
    in_beat = {"now": False}
    entered = threading.Event()

    def beat() -> None:
        with FORK_GUARD.lock:
            in_beat["now"] = True
            entered.set()
            # Long enough that an unguarded fork lands inside (it comes right after `entered`).
            threading.Event().wait(0.3)
            in_beat["now"] = False

    thread = threading.Thread(target=beat)
    thread.start()
    entered.wait(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what did it inherit?
        os.write(write, b"inside" if in_beat["now"] else b"outside")
        os._exit(0)
    os.close(write)
    seen = os.read(read, 16)
    os.waitpid(pid, 0)
    thread.join()
    assert seen == b"outside"
    # The parent got the guard back and a child starts with a free one.
    assert not FORK_GUARD.lock.locked()


def test_the_heartbeat_holds_the_guard_while_it_beats(monkeypatch) -> None:
    held: list[bool] = []
    import hosts.services

    step = HostHeartbeat.__new__(HostHeartbeat)
    step._stop = threading.Event()
    step._capacity = 1

    def host_beat(**kwargs) -> None:
        held.append(FORK_GUARD.lock.locked())
        step._stop.set()  # one beat is enough

    monkeypatch.setattr(hosts.services, "host_beat", host_beat)
    step._run(None, lambda: {})
    assert held == [True]
    assert not FORK_GUARD.lock.locked()
