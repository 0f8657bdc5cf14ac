#!/usr/bin/env python
"""Start the portal, a Celery worker and the scheduler together; stop all of them on Ctrl-C.

Used by `make run`. Each child gets its own process group so that one Ctrl-C is handled here
once: we ask every child to stop, wait, and kill only what does not stop in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = os.environ.get("PLANQK_HOST", "127.0.0.1")
PORT = os.environ.get("PLANQK_PORT", "8000")
CONCURRENCY = os.environ.get("PLANQK_WORKER_CONCURRENCY", "2")

COMMANDS = {
    "web": [PY, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
    "worker": [
        PY,
        "-m",
        "celery",
        "-A",
        "planqk_portal",
        "worker",
        "-l",
        "info",
        "--concurrency",
        CONCURRENCY,
        "-n",
        "worker@%h",
        "--without-gossip",
        "--without-mingle",
    ],
    "scheduler": [PY, "-m", "celery", "-A", "planqk_portal", "beat", "-l", "info"],
}


def main() -> int:
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, cmd in COMMANDS.items():
        children[name] = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
        print(f"[run] started {name} (pid {children[name].pid})", flush=True)
    print(f"[run] portal on http://{HOST}:{PORT}/  (Ctrl-C stops everything)", flush=True)
    exit_code = 0
    while not stopping:
        for name, proc in children.items():
            if proc.poll() is not None:
                print(f"[run] {name} exited with {proc.returncode}; stopping the others", flush=True)
                exit_code = proc.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    for proc in children.values():
        if proc.poll() is None:
            # Celery finishes its current task on SIGTERM (warm shutdown); acks_late covers the rest.
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"[run] {name} did not stop in time; killing it", flush=True)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print("[run] stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
