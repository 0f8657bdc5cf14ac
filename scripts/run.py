#!/usr/bin/env python
"""Start the portal (the production server), a Celery worker and the scheduler; keep them running.

Used by `make run`. Each child gets its own process group, so that one Ctrl-C is handled here
once: we ask every child to stop, wait, and kill only what does not stop in time. A child that
dies is started again after a delay that doubles with each quick death (1 s up to 30 s) and
starts over once it has run for a minute; every death and restart is printed.

Settings: ``PLANQK_HOST`` / ``PLANQK_PORT`` (``127.0.0.1`` / ``8000``; also read as
``PLANQK_WEB_HOST`` / ``PLANQK_WEB_PORT``), ``PLANQK_WEB_WORKERS`` (server processes, default
up to 4), ``PLANQK_WORKER_CONCURRENCY`` (``2``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planqk_portal.server import default_workers, server_command  # noqa: E402

PY = sys.executable
HOST = os.environ.get("PLANQK_HOST") or os.environ.get("PLANQK_WEB_HOST") or "127.0.0.1"
PORT = int(os.environ.get("PLANQK_PORT") or os.environ.get("PLANQK_WEB_PORT") or 8000)
CONCURRENCY = os.environ.get("PLANQK_WORKER_CONCURRENCY", "2")
WEB_WORKERS = int(os.environ.get("PLANQK_WEB_WORKERS") or min(default_workers(), 4))

BACKOFF_FIRST = float(os.environ.get("PLANQK_RUN_BACKOFF_FIRST", "1"))
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a child that ran this long starts over at the first delay


def child_environment() -> dict[str, str]:
    """What every child sees: the server's address, and plain HTTP on loopback (no TLS redirect).

    Settings silence Django's SSL-redirect deployment check only for a loopback address, so
    ``manage.py check --deploy`` with this environment is clean.
    """
    env = dict(os.environ)
    env["PLANQK_WEB_HOST"] = HOST
    env["PLANQK_WEB_PORT"] = str(PORT)
    if HOST in {"127.0.0.1", "::1", "localhost"}:
        env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    return env


def commands() -> dict[str, list[str]]:
    return {
        "web": server_command(host=HOST, port=PORT, workers=WEB_WORKERS, threads=None),
        "worker": [
            PY, "-m", "celery", "-A", "planqk_portal", "worker", "-l", "info", "--concurrency", CONCURRENCY,
            "-n", "worker@%h", "--without-gossip", "--without-mingle",
        ],
        "scheduler": [PY, "-m", "celery", "-A", "planqk_portal", "beat", "-l", "info"],
    }  # fmt: skip


@dataclass
class Child:
    name: str
    command: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    delay: float = BACKOFF_FIRST
    restart_at: float | None = None
    restarts: int = field(default=0)

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=env, start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None
        print(f"[run] started {self.name} (pid {self.proc.pid})", flush=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def stop_all(children: list[Child]) -> None:
    for child in children:
        if child.alive():
            # Celery finishes its current task on SIGTERM (warm shutdown); acks_late covers the rest.
            os.killpg(child.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        if child.proc is None:
            continue
        try:
            child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"[run] {child.name} did not stop in time; killing it", flush=True)
        # Whatever is left in its group (pool processes, a build's sandbox) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        child.proc.wait()


def stop_warm_runners(env: dict[str, str]) -> None:
    """Warm runners outlive the worker that started them (a restarted worker takes them over):
    once the worker is gone, stop them, or they would idle on after Ctrl-C."""
    command = [PY, "manage.py", "stop_warm_runners", "--wait", "10"]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        print("[run] stopping the warm runners took too long", flush=True)
        return
    # Its last line: the count, or the error (a stack trace's last line names it).
    lines = (done.stdout.strip() or done.stderr.strip() or "warm runners: no answer").splitlines()
    print(f"[run] {lines[-1]}", flush=True)


def main() -> int:
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    env = child_environment()
    children = [Child(name, command) for name, command in commands().items()]
    for child in children:
        child.start(env)
    print(f"[run] portal on http://{HOST}:{PORT}/  (Ctrl-C stops everything)", flush=True)
    while not stopping:
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None:
                if now >= child.restart_at and not stopping:
                    child.restarts += 1
                    print(f"[run] restarting {child.name} (restart {child.restarts})", flush=True)
                    child.start(env)
                continue
            if child.alive():
                continue
            code = child.proc.returncode
            # Leftovers of the dead child's group (e.g. Celery pool processes) must not linger.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGKILL)
            if now - child.started_at >= STABLE_AFTER:
                child.delay = BACKOFF_FIRST
            print(f"[run] {child.name} exited with {code}; restarting it in {child.delay:g} s", flush=True)
            child.restart_at = now + child.delay
            child.delay = min(child.delay * 2, BACKOFF_MAX)
        time.sleep(0.2)
    print("[run] stopping", flush=True)
    stop_all(children)
    stop_warm_runners(env)
    print("[run] stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
