"""Hosts: executions per second of the trivial sum job with one and with two worker hosts.

``python -m bench hosts [--burst N] [--rounds N]`` starts real Celery workers as "hosts" on this
machine (each with its own ``PLANQK_HOST_NAME``, one PostgreSQL and Redis, as
tests/hosts/conftest.py's ``start_host`` does), submits bursts of sum jobs on the local runtime
through admission and routing (``D.runtime.local``), and reports executions per second from the
first submission to the last final state, side by side in one run:

- one host, one worker process;
- two hosts, one worker process each;
- one host, two worker processes (the same pool size as two hosts: what a second host adds
  beyond a second process).

Every host reads the version's build from this process's data directory (how a host materialises
a build of its own is item 1 of issue 22, measured by its own tests, not here).

Runs in a child process (settings are read at start-up) against ``bench_hosts`` in PostgreSQL and
``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/5``); each layout on a queue family of its own,
all running at once, their bursts taking turns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from bench.common import write_table
from bench.jobs import SAMPLE_INPUT, _build, _check, _django_child, _remove_build, _submit, _wait_all

ROOT = Path(__file__).resolve().parent.parent
# (label, hosts, worker processes per host)
LAYOUTS = [("1 host x 1 process", 1, 1), ("2 hosts x 1 process", 2, 1), ("1 host x 2 processes", 1, 2)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench hosts")
    parser.add_argument("--burst", type=int, default=24, help="jobs per burst (default 24)")
    parser.add_argument("--rounds", type=int, default=5, help="bursts per layout; the median is reported (default 5)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_hosts"),
        "CELERY_BROKER_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"),
        "PLANQK_QUEUE": f"bench-hosts-{uuid.uuid4().hex[:8]}",
        # A burst is the owner's own: no owner quota (0: no limit) stands between it and the hosts.
        "PLANQK_OWNER_MAX_CONCURRENT": "0",
        "PLANQK_OWNER_REQUESTS_PER_MINUTE": "0",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    cmd = [sys.executable, "-m", "bench", "hosts", "--child", "--burst", str(args.burst), "--rounds", str(args.rounds)]
    load_before = os.getloadavg()[0]
    out = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, check=True, text=True).stdout
    load_after = os.getloadavg()[0]
    rows = [json.loads(line[4:]) for line in out.splitlines() if line.startswith("ROW ")]
    notes = (
        f"Sum sample on the local runtime, Redis broker, PostgreSQL. Each burst submits {args.burst} jobs at "
        "once through admission (so through routing, to the local runtime's queue); executions per second "
        "are the burst size over the time from its first submission to its last final state, as the "
        f"database records them; the median and the range of {args.rounds} bursts after a warm-up of 3 jobs "
        "per process; all layouts' hosts run at once, each on a queue family of its own, and their bursts "
        "take turns, so changes in the machine's load fall on every layout alike. `jobs per host` is who ran "
        "the bursts (the host part of each job's worker id). Hosts "
        "are Celery workers with their own PLANQK_HOST_NAME on this one machine, so they share its cores: "
        "a second host on the same cores is a second worker process, not more hardware. Load average "
        f"(1 min) before the run {load_before:.1f}, after it {load_after:.1f}: other work shared the machine."
    )
    write_table("hosts", "Hosts: executions per second with one and two worker hosts", rows, notes)
    return 0


# --- the child --------------------------------------------------------------------------------------


def _child(args: argparse.Namespace) -> int:
    _django_child()
    from django.conf import settings

    from accounts.models import User

    owner, _ = User.objects.get_or_create(email="bench-hosts@example.com")
    version, _source = _build(owner, "sum", "local")
    data, params = SAMPLE_INPUT["sum"]
    base = settings.CELERY_TASK_DEFAULT_QUEUE
    workers: list[subprocess.Popen[bytes]] = []
    try:
        # Every layout's hosts run at once, each layout on a queue family of its own, and the
        # bursts take turns, so a change in the machine's load falls on all layouts alike.
        for index, (_label, hosts, processes) in enumerate(LAYOUTS):
            family = f"{base}-{index}"
            workers += [_start_host(f"layout{index}-host-{n + 1}", processes, family) for n in range(hosts)]
        rates: dict[int, list[float]] = {index: [] for index in range(len(LAYOUTS))}
        ran: dict[int, Counter[str]] = {index: Counter() for index in range(len(LAYOUTS))}
        for round_ in range(args.rounds + 1):
            for index, (_label, hosts, processes) in enumerate(LAYOUTS):
                _route_to(f"{base}-{index}")
                if round_ == 0:  # warm: imports, connections, the environment's page cache
                    for _ in range(3 * hosts * processes):
                        _wait_all([_submit(version, owner, data, params)])
                    continue
                jobs = _wait_all([_submit(version, owner, data, params) for _ in range(args.burst)], timeout=300)
                _check(jobs)
                span = (max(j.ended_at for j in jobs) - min(j.created_at for j in jobs)).total_seconds()
                rates[index].append(args.burst / span)
                ran[index].update(j.worker.split(":", 1)[0].split("-", 1)[1] for j in jobs)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
        _remove_build(version)
    for index, (label, hosts, processes) in enumerate(LAYOUTS):
        row = {
            "layout": label,
            "worker processes": str(hosts * processes),
            "exec/s (median)": f"{statistics.median(rates[index]):.2f}",
            "exec/s (range)": f"{min(rates[index]):.2f}-{max(rates[index]):.2f}",
            "jobs per host": ", ".join(f"{name} {count}" for name, count in sorted(ran[index].items())),
        }
        print("ROW " + json.dumps(row), flush=True)
        print(json.dumps(row), file=sys.stderr)
    return 0


def _route_to(family: str) -> None:
    """Submit into ``family`` from now on: routing derives every queue from the default one."""
    from django.conf import settings

    from planqk_portal.celery import app

    settings.CELERY_TASK_DEFAULT_QUEUE = app.conf.task_default_queue = family


def _start_host(name: str, concurrency: int, family: str) -> subprocess.Popen[bytes]:
    """A worker host: its own PLANQK_HOST_NAME, consuming what routing sends it in ``family``."""
    log = ROOT / "var" / f"bench-{name}.log"
    cmd = [sys.executable, "-m", "celery", "-A", "planqk_portal", "worker", "-l", "info",
           "-Q", family, "--concurrency", str(concurrency),
           "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h",
           "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-" + "x" * 40,
        "PLANQK_HOST_NAME": name,
        "PLANQK_QUEUE": family,
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while " ready." not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(log.read_text(errors="replace"))
        time.sleep(0.2)
    return proc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
