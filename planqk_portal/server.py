"""The production web server: ``python -m planqk_portal.server`` (granian serving the WSGI app).

Granian parses HTTP in Rust, outside the interpreter lock; against gunicorn's gthread workers on
the same machine it needs about a third less CPU per status poll and keeps the tail latency low
(bench/results/gateway.md). Put it behind a TLS proxy. Settings, all optional:

- ``PLANQK_WEB_HOST`` (``0.0.0.0``) and ``PLANQK_WEB_PORT`` (``8000``);
- ``PLANQK_WEB_WORKERS``: processes, default one per CPU core;
- ``PLANQK_WEB_THREADS``: threads per process that run Django, default 2 (a thread is busy for
  the whole of a request, including its database round trips).

Granian's own ``GRANIAN_*`` variables work too; these win because they become flags.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

APPLICATION = "planqk_portal.wsgi:application"


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use, not the host's
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def server_command(
    *, host: str | None = None, port: int | None = None, workers: int | None = None, threads: int | None = None
) -> list[str]:
    """The granian command line for the portal; arguments beat environment variables beat defaults."""
    environ = os.environ
    host = host or environ.get("PLANQK_WEB_HOST") or "0.0.0.0"  # noqa: S104 - a server listens on all interfaces
    port = port or int(environ.get("PLANQK_WEB_PORT") or 8000)
    workers = workers or int(environ.get("PLANQK_WEB_WORKERS") or default_workers())
    threads = threads or int(environ.get("PLANQK_WEB_THREADS") or 2)
    executable = Path(sys.executable).with_name("granian")
    granian = str(executable) if executable.exists() else (shutil.which("granian") or "granian")
    return [
        granian,
        "--interface", "wsgi",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        "--blocking-threads", str(threads),
        # A worker that dies (out of memory, a crashed extension) comes back instead of shrinking the pool.
        "--respawn-failed-workers",
        "--log-level", "warning",
        APPLICATION,
    ]  # fmt: skip


def main() -> None:
    """Replace this process with granian, so signals from a supervisor reach the server directly."""
    command = server_command()
    os.execv(command[0], command)  # noqa: S606 - a fixed program with arguments, no shell wanted


if __name__ == "__main__":
    main()
