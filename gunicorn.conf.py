"""gunicorn's settings for the portal; gunicorn reads this file from the working directory.

``gunicorn planqk_portal.wsgi`` (behind a TLS proxy). Two single-threaded-ish processes per core:
the gateway's requests are short and CPU-bound, so more threads per process would only queue on
the interpreter lock (bench/results/gateway.md compares 3x4, 4x2 and 6x1 on two cores).
Override with ``WEB_CONCURRENCY`` (processes), ``GUNICORN_THREADS`` and ``GUNICORN_BIND``, or any
flag on the command line.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * multiprocessing.cpu_count())
threads = int(os.environ.get("GUNICORN_THREADS") or 2)
worker_class = "gthread"
# Clients poll job status over one connection; behind a proxy that keeps connections open too.
keepalive = 30
backlog = 512
# PUT .../cancel waits up to 5 s for the execution to stop; builds and uploads stream to storage.
timeout = 60
