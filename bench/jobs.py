"""Jobs: latency from submission to a final state, executions per second, overhead over `python -m src`.

``python -m bench jobs [--runs N] [--configs redis,filesystem]`` runs, for the sum and qiskit_bell
samples on the local runtime and (where an engine answers) the Docker runtime:

- latency: one job at a time on a warm worker, ``ended_at - created_at`` as the database
  records them (submission to final state, so the benchmark's own polling does not count), split
  into the wait for a worker (``started_at - created_at``) and the execution;
- throughput: a burst of jobs submitted at once, worked off by a worker with concurrency 1 and 2;
- the direct baseline: ``python -m src`` with the same environment (local), and ``docker run`` of
  the same image (docker), so the difference is what the platform adds.

Each broker/database configuration runs in a child process of its own (settings are read at
start-up) against a database of its own: ``bench_jobs`` in PostgreSQL, ``var/bench-jobs.sqlite3``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import percentile, write_table

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    "redis": {
        "label": "Redis broker, PostgreSQL",
        "env": {
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_jobs"),
            "CELERY_BROKER_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"),
        },
    },
    "filesystem": {
        "label": "filesystem broker, SQLite (embedded default)",
        "env": {
            "DATABASE_URL": f"sqlite:///{ROOT / 'var' / 'bench-jobs.sqlite3'}",
            "CELERY_BROKER_URL": "filesystem://",
        },
    },
}
SAMPLE_INPUT = {
    "sum": ({"values": [100, 50, 200, 70, 0.69]}, {"round_off": False}),
    "qiskit_bell": ({}, {"shots": 1024, "seed": 7}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench jobs")
    parser.add_argument("--runs", type=int, default=30, help="sequential jobs per latency row (default 30)")
    parser.add_argument("--burst", type=int, default=24, help="jobs per throughput burst (default 24)")
    parser.add_argument("--configs", default="redis,filesystem")
    parser.add_argument("--runtimes", default="local,docker")
    parser.add_argument("--samples", default="sum,qiskit_bell")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    rows: list[dict[str, str]] = []
    for name in args.configs.split(","):
        config = CONFIGS[name]
        env = {**os.environ, **config["env"], "PLANQK_QUEUE": f"bench-{uuid.uuid4().hex[:8]}"}
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        cmd = [sys.executable, "-m", "bench", "jobs", "--child", name, "--runs", str(args.runs),
               "--burst", str(args.burst), "--runtimes", args.runtimes, "--samples", args.samples]  # fmt: skip
        print(f"== {config['label']}", file=sys.stderr)
        out = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, check=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("ROW "):
                rows.append({"broker, database": config["label"], **json.loads(line[4:])})
    notes = (
        "Latency: one job at a time on a warm worker, from `created_at` (submission) to `ended_at` (final "
        "state) as the database records them; `wait` is submission to claim by the worker, `run` the "
        "rest (start of the execution, reading its output, storing logs and the result). Runtime: the "
        "runtime alone, `start()` until `poll()` says it ended (sandbox, supervisor, runner). Throughput: a "
        "burst of jobs submitted at once, executions per second from the first submission to the last "
        "final state, with one worker process and with two. Direct: the same program run without the "
        "platform (`python -m src` with the service's environment; `docker run` of the service's image), "
        "start of the process to its exit. Overhead: latency p50 minus direct p50; latency minus runtime is "
        "what the engine, the broker and the database add."
    )
    write_table("jobs", "Jobs: latency, throughput and overhead", rows, notes)
    return 0


# --- the child: one configuration --------------------------------------------------------------------


def _child(args: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planqk_portal.settings")
    _ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User

    owner, _ = User.objects.get_or_create(email="bench-jobs@example.com")
    for runtime in args.runtimes.split(","):
        if runtime == "docker" and not _docker_answers():
            print("docker: no engine answers; skipped", file=sys.stderr)
            continue
        for sample in args.samples.split(","):
            version, source = _build(owner, sample, runtime)
            data, params = SAMPLE_INPUT[sample]
            direct = _direct(version, source, runtime, data, params, runs=max(5, args.runs // 3))
            bare = _runtime_only(version, runtime, data, params, runs=max(5, args.runs // 3))
            row: dict[str, Any] = {"runtime": runtime, "sample": sample}
            for concurrency in (1, 2):
                worker = _start_worker(concurrency)
                try:
                    for _ in range(3):  # warm: imports, connections, the environment's page cache
                        _wait_all([_submit(version, owner, data, params)])
                    if concurrency == 1:
                        jobs = [_wait_all([_submit(version, owner, data, params)])[0] for _ in range(args.runs)]
                        _check(jobs)
                        total = [(j.ended_at - j.created_at).total_seconds() * 1000 for j in jobs]
                        wait = [(j.started_at - j.created_at).total_seconds() * 1000 for j in jobs]
                        row["latency p50 ms"] = f"{percentile(total, 50):.0f}"
                        row["latency p95 ms"] = f"{percentile(total, 95):.0f}"
                        row["wait p50 ms"] = f"{percentile(wait, 50):.0f}"
                        row["run p50 ms"] = f"{percentile([t - w for t, w in zip(total, wait, strict=True)], 50):.0f}"
                        row["direct p50 ms"] = f"{percentile(direct, 50):.0f}"
                        row["runtime p50 ms"] = f"{percentile(bare, 50):.0f}"
                        row["overhead p50 ms"] = f"{percentile(total, 50) - percentile(direct, 50):.0f}"
                    burst = args.burst if sample == "sum" else max(6, args.burst // 3)
                    jobs = _wait_all([_submit(version, owner, data, params) for _ in range(burst)], timeout=900)
                    _check(jobs)
                    span = (max(j.ended_at for j in jobs) - min(j.created_at for j in jobs)).total_seconds()
                    row[f"exec/s {concurrency} worker{'s' if concurrency > 1 else ''}"] = f"{burst / span:.2f}"
                finally:
                    worker.terminate()
                    worker.wait(timeout=60)
            _remove_build(version)
            print("ROW " + json.dumps(row), flush=True)
            print(json.dumps(row), file=sys.stderr)
    return 0


def _ensure_database() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:
        return False


def _build(owner: Any, sample: str, runtime: str) -> tuple[Any, Path]:
    from jobs.runtime_factory import get_runtime
    from planqk_samples import SAMPLES, sample_files
    from planqk_template import write_files
    from runtimes import BuildSpec
    from services.models import BuildStatus, Service, ServiceVersion

    files = sample_files(sample)
    source = Path(tempfile.mkdtemp(prefix=f"bench-{sample}-"))
    write_files(source, files)
    service = Service.objects.create(
        owner=owner, name=f"{sample.replace('_', '-')}-{uuid.uuid4().hex[:6]}", title=SAMPLES[sample].title
    )
    requirements = files.get("requirements.txt", b"").decode()
    version = ServiceVersion.objects.create(service=service, version="1.0.0", requirements=requirements)
    rt = get_runtime(runtime)
    started = time.monotonic()
    handle = rt.build(
        BuildSpec(version_id=str(version.id), source_dir=source, requirements=requirements), log=lambda line: None
    ).handle
    print(f"built {sample} on {runtime} in {time.monotonic() - started:.1f}s", file=sys.stderr)
    version.runtime, version.build_handle, version.status = rt.name, handle, BuildStatus.READY
    version.save()
    return version, source


def _remove_build(version: Any) -> None:
    """Images and build folders are not left behind (environments stay cached by the runtime)."""
    from jobs.runtime_factory import get_runtime

    get_runtime(version.runtime).remove_build(version.build_handle)


def _direct(version: Any, source: Path, runtime: str, data: Any, params: Any, *, runs: int) -> list[float]:
    """Milliseconds of running the program without the platform."""
    (source / "input" / "data.json").write_text(json.dumps(data))
    (source / "input" / "params.json").write_text(json.dumps(params))
    handle = version.build_handle
    if runtime == "local":
        cmd = [str(Path(handle["env_dir"]) / "bin" / "python"), "-m", "src"]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    else:
        image = handle.get("image_id") or handle.get("image")
        cmd = ["docker", "run", "--rm", "--network", "none", "-e", "BASE64_ENCODED=false",
               "-e", f"DATA_VALUE={json.dumps(data)}", "-e", f"PARAMS_VALUE={json.dumps(params)}", image]  # fmt: skip
        env = dict(os.environ)
    times = []
    for _ in range(runs + 1):
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=source, env=env, capture_output=True, text=True, check=False)
        times.append((time.monotonic() - started) * 1000)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:3])}... failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return times[1:]  # the first run warms the page cache


def _runtime_only(version: Any, runtime: str, data: Any, params: Any, *, runs: int) -> list[float]:
    """Milliseconds from ``runtime.start`` until ``poll`` says it ended: the runtime without the platform."""
    from jobs.runtime_factory import get_runtime
    from runtimes import ExecutionSpec

    rt = get_runtime(runtime)
    times = []
    for index in range(runs + 1):
        spec = ExecutionSpec(
            execution_id=f"bench-{uuid.uuid4().hex[:8]}-{index}",
            build=rt.build_handle(version.build_handle),
            data=data,
            params=params,
        )
        started = time.monotonic()
        handle = rt.start(spec)
        while rt.poll(handle).running:
            time.sleep(0.005)
        times.append((time.monotonic() - started) * 1000)
        rt.cleanup(handle)
    return times[1:]


def _start_worker(concurrency: int) -> subprocess.Popen[bytes]:
    from django.conf import settings

    log = ROOT / "var" / f"bench-worker-{concurrency}.log"
    cmd = [sys.executable, "-m", "celery", "-A", "planqk_portal", "worker", "-l", "warning",
           "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--concurrency", str(concurrency),
           "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
           "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    env = {**os.environ, "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "bench-only-" + "x" * 40}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    time.sleep(1)
    if proc.poll() is not None:
        raise RuntimeError(log.read_text())
    return proc


def _submit(version: Any, owner: Any, data: Any, params: Any) -> Any:
    from django.db import transaction

    from jobs.admission import execution_admit

    with transaction.atomic():
        return execution_admit(service_version=version, owner=owner, data=data, params=params)


def _wait_all(jobs: list[Any], timeout: float = 300) -> list[Any]:
    from jobs.models import JOB_FINAL_STATES, Job

    ids = [job.pk for job in jobs]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(Job.objects.filter(pk__in=ids, status__in=JOB_FINAL_STATES))
        if len(found) == len(ids):
            return found
        time.sleep(0.02)
    raise RuntimeError(f"jobs not final after {timeout} s")


def _check(jobs: list[Any]) -> None:
    failed = [j for j in jobs if j.status != "SUCCEEDED"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs did not succeed: {failed[0].error_code} {failed[0].error_detail}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
