"""Jobs: latency from submission to a final state, executions per second, and the baselines.

``python -m bench jobs [--runs N] [--configs redis,filesystem] [--runtimes local,docker]
[--paths cold,warm] [--waits events,poll] [--warm-waits events] [--quick]`` runs, for the sum
and qiskit_bell samples on the local runtime (Docker too with ``--runtimes local,docker``), side
by side:

- our cold path (``PLANQK_WARM=off``), once per engine wait (``PLANQK_ENGINE_WAIT``: ``events``,
  the default, and ``poll``, the clock alone): one job at a time on a warm worker,
  ``ended_at - created_at`` as the database records them (submission to final state, so the
  benchmark's own polling does not count), split into the wait for a worker
  (``started_at - created_at``) and the execution;
- our warm path (``PLANQK_WARM=on``, :mod:`runtimes.local.warm`), twice: *prewarmed* (before
  each job the runtime's ``prewarm`` has a runner ready and no refill is running, so the job
  competes with nothing) and *steady* (jobs back to back while the pool refills in the
  background, which is what a caller sees); every row says how many of its jobs really took a
  warm runner (their job log says ``(warm runner)``), and the warm rows the memory of an idle
  runner;
- the fresh-process baseline: ``python -m src`` with the same environment (local), ``docker run``
  of the same image (docker);
- the in-process baseline (:mod:`bench.inprocess`): ``run()`` in a thread of a minimal HTTP
  server, as PlanQK's local service API does, submission to final state over loopback HTTP;
- throughput: a burst of jobs submitted at once, worked off by a worker with concurrency 1 and
  2, and (sum) a burst through the gateway under the production server, end to end as a client
  sees it (token, POST, polling each execution to its final state), with one worker;
- the ratios (ours / in-process, ours / fresh process, cold / warm) and issue 17's goals, met or not.

Each broker/database configuration runs in a child process of its own (settings are read at
start-up) against a database of its own: ``bench_jobs`` in PostgreSQL, ``var/bench-jobs.sqlite3``
(``BENCH_DATABASE_URL``, ``BENCH_REDIS_URL`` and ``BENCH_SQLITE_PATH`` say otherwise).
``--quick`` (sum only, a few runs, the events wait only, nothing written to bench/results) is
the smoke test ``tests/bench/test_jobs_bench.py`` runs.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import inprocess
from bench.common import RESULTS, percentile, write_table

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
            "DATABASE_URL": f"sqlite:///{os.environ.get('BENCH_SQLITE_PATH') or ROOT / 'var' / 'bench-jobs.sqlite3'}",
            "CELERY_BROKER_URL": "filesystem://",
        },
    },
}
SAMPLE_INPUT = {
    "sum": ({"values": [100, 50, 200, 70, 0.69]}, {"round_off": False}),
    "qiskit_bell": ({}, {"shots": 1024, "seed": 7}),
    "qiskit_bell_eager": ({}, {"shots": 1024, "seed": 7}),
}
#: Variants of a sample made here: (the sample, a line added to src/program.py after its future
#: import). qiskit_bell imports Qiskit inside run() (a parameter error is answered without the
#: import), so a warm runner, which imports src.program, has not imported Qiskit; the eager
#: variant imports it at module level, as a program that wants its imports done ahead does.
VARIANTS = {"qiskit_bell_eager": ("qiskit_bell", "import qiskit  # noqa: F401\nimport qiskit_aer  # noqa: F401\n")}


#: Issue 17's goals: (label, sample, column, at most / at least, number).
GOALS = (
    ("trivial sum, p50 submission to final state", "sum", "latency p50 ms", "<=", 30.0),
    ("Qiskit Bell on Aer, p50 submission to final state", "qiskit_bell", "latency p50 ms", "<=", 150.0),
    (
        "Qiskit Bell on Aer, Qiskit imported at module level (qiskit_bell_eager), p50 submission to final state",
        "qiskit_bell_eager",
        "latency p50 ms",
        "<=",
        150.0,
    ),
    ("trivial executions per second end to end through the gateway, 1 worker", "sum", "gateway exec/s", ">=", 200.0),
)
#: The rows' paths: the cold start, and the warm path prewarmed and in steady state.
COLD, PREWARMED, STEADY = "cold", "warm, prewarmed", "warm, steady"
COLUMNS = (
    "broker, database", "runtime", "sample", "path", "engine wait", "latency p50 ms", "latency p95 ms",
    "to claim p50 ms", "run p50 ms", "warm taken", "runtime p50 ms", "fresh process p50 ms", "in-process p50 ms",
    "in-process via HTTP p50 ms", "ours / in-process", "ours / fresh process", "exec/s 1 worker", "exec/s 2 workers",
    "gateway exec/s", "bursts warm taken", "idle warm runner MB",
)  # fmt: skip
#: Columns that count jobs ("taken/all"), not numbers.
COUNT_COLUMNS = ("warm taken", "bursts warm taken")
#: Below this line bench/results/jobs.md is written by hand (the reading, the runs before): kept as it is.
KEEP_MARKER = "<!-- python -m bench jobs writes what is above this line; what follows is kept -->"
NOT_MEASURED = "-"
#: What the engine writes in a job's log when the job took a warm runner (jobs.engine).
WARM_LOG = "(warm runner)"
#: There is no template process yet (issue 17, item 1: a refill is a cold start of a new runner).
TEMPLATE_NOT_BUILT = (
    "not measured: there is no template process yet (runtimes/local/warm.py refills the pool by starting "
    "a new runner cold, off the execution's path; forking from a template is not built)"
)
# The benchmark's owner runs bursts of its own services: its per-owner limits would cut them off (0: none).
UNLIMITED = {"PLANQK_OWNER_MAX_CONCURRENT": "0", "PLANQK_OWNER_REQUESTS_PER_MINUTE": "0"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench jobs")
    parser.add_argument("--runs", type=int, default=30, help="sequential jobs per latency row (default 30)")
    parser.add_argument("--burst", type=int, default=24, help="jobs per throughput burst (default 24)")
    parser.add_argument("--gateway-burst", type=int, default=60, help="executions of the gateway burst (default 60)")
    parser.add_argument("--configs", default="redis,filesystem")
    parser.add_argument("--runtimes", default="local", help="local (default), or local,docker")
    parser.add_argument("--samples", default="sum,qiskit_bell")
    parser.add_argument("--paths", default="cold,warm", help="cold (PLANQK_WARM=off), warm (PLANQK_WARM=on)")
    parser.add_argument("--waits", default="events,poll", help="engine waits of the cold rows (PLANQK_ENGINE_WAIT)")
    parser.add_argument("--warm-waits", default="events", help="engine waits of the warm rows (default events)")
    parser.add_argument("--quick", action="store_true", help="a smoke test: sum only, a few runs, nothing written")
    parser.add_argument("--out", help="where the results go (default bench/results/jobs.md; none with --quick)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.burst, args.gateway_burst = min(args.runs, 3), min(args.burst, 3), min(args.gateway_burst, 4)
        if args.samples == parser.get_default("samples"):
            args.samples = "sum"
        if args.waits == parser.get_default("waits"):
            args.waits = "events"  # the poll rows are the same code with another setting: CI time saved
    if args.child:
        return _child(args)

    load_before = os.getloadavg()
    rows: list[dict[str, str]] = []
    notes: list[str] = []
    failed: list[str] = []
    warm_settings = ""
    for name in args.configs.split(","):
        config = CONFIGS[name]
        env = {**os.environ, **config["env"], "PLANQK_QUEUE": f"bench-{uuid.uuid4().hex[:8]}", **UNLIMITED}
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        cmd = [sys.executable, "-m", "bench", "jobs", "--child", name, "--runs", str(args.runs),
               "--burst", str(args.burst), "--gateway-burst", str(args.gateway_burst), "--runtimes", args.runtimes,
               "--samples", args.samples, "--paths", args.paths, "--waits", args.waits,
               "--warm-waits", args.warm_waits, *(["--quick"] if args.quick else [])]  # fmt: skip
        print(f"== {config['label']}", file=sys.stderr)
        done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, check=False, text=True)
        if done.returncode != 0:
            # The rows it measured are kept; what it did not measure says so (its error is on stderr).
            failed.append(f"{config['label']}: the run stopped (exit {done.returncode}) after the rows above")
        for line in done.stdout.splitlines():
            if line.startswith("ROW "):
                row = json.loads(line[4:])
                if row.get("note"):
                    notes.append(f"{config['label']}, {row['runtime']}, {row['sample']}: {row['note']}")
                rows.append({"broker, database": config["label"], **row})
            elif line.startswith("WARM "):
                warm_settings = line[5:]
    rows = [{column: row.get(column, NOT_MEASURED) for column in COLUMNS} for row in rows]
    load = f"load average (1, 5, 15 min) before: {_load(load_before)}; after: {_load(os.getloadavg())}"
    parts = [load, f"Warm runners: {warm_settings}" if warm_settings else "", goals_text(rows)]
    notes += failed
    parts += ["Not measured:\n\n" + "\n".join(f"- {note}" for note in notes) if notes else "", NOTES]
    text = "\n\n".join(part for part in parts if part)
    out_path = None if args.quick and not args.out else Path(args.out) if args.out else RESULTS / "jobs.md"
    kept = ""
    if out_path is not None and out_path.exists() and KEEP_MARKER in out_path.read_text():
        kept = out_path.read_text().split(KEEP_MARKER, 1)[1]
    write_table(
        "jobs", "Jobs: latency, throughput and the baselines", rows, text + "\n\n" + KEEP_MARKER + kept.rstrip("\n"),
        path=out_path,
    )  # fmt: skip
    return 1 if failed else 0


NOTES = (
    "Latency: one job at a time on a warm worker, from `created_at` (submission) to `ended_at` "
    "(final state) as the database records them; `to claim` is submission to claim by the worker, `run` the "
    "rest (start of the execution, following it, storing logs and the result). Path: `cold` is PLANQK_WARM=off "
    "(every execution starts a supervisor, a sandbox and an interpreter that imports the code); `warm` is "
    "PLANQK_WARM=on (the execution takes a runner started and imported ahead of time, runtimes/local/warm.py): "
    "`prewarmed` waits before each job until the runtime's prewarm has a runner ready and no refill is running "
    "(the job competes with nothing), `steady` submits each job as soon as the one before ended while the pool "
    "refills in the background (what a caller sees). `warm taken`: how many of the row's latency jobs took a "
    "warm runner (their job log says `(warm runner)`), `bursts warm taken` the same for the jobs of its bursts "
    "and the gateway's. Idle warm runner: the memory of a ready runner nobody has taken, as its pool's state() "
    "reads it (local: runtimes.local.warm.runner_memory_kb, its cgroup's memory.current where it has one, else "
    "the PSS of its processes; Docker: the container's cgroup charge), median over the prewarmed jobs. "
    "qiskit_bell_eager: the qiskit_bell sample with `import qiskit` and `import qiskit_aer` added at the top of "
    "src/program.py (the sample imports them inside run(), so a warm runner has not). "
    "Engine wait: `events` (PLANQK_ENGINE_WAIT=events, the "
    "default: the runtime wakes the engine when the execution ended or printed) or `poll` (the clock alone). "
    "Runtime: the runtime alone, `start()` until `poll()` says it ended (cold; warm prewarmed; warm back to "
    "back). Fresh process: `python -m src` with the service's environment (`docker run` of its "
    "image), start of the process to its exit. In-process: `run()` in a thread of a minimal HTTP server that "
    "imported the program once (bench/inprocess.py, as PlanQK's local service API), POST to the end of `run()` "
    "as the server records it (no isolation, no persistence), and `via HTTP` as its client sees it (its POST to "
    "the GET that reads the final state); the same numbers on every row of a sample. "
    "Throughput: a burst of jobs submitted at once, executions per second from the first submission to the "
    "last final state, with a worker of concurrency 1 and 2. Gateway: the sum through the production server "
    "(one granian worker) with one worker of concurrency 1, as a client sees it: a token, then the burst "
    "POSTed and every execution polled until its final state, executions per second from the token request to "
    "the last final state seen."
)


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _find(rows: list[dict[str, str]], config: str, sample: str, path: str) -> dict[str, str] | None:
    """The local runtime's row of ``config``, ``sample`` and ``path`` with the events wait."""
    for row in rows:
        if (row["broker, database"], row["runtime"], row["sample"], row["path"], row["engine wait"]) == (
            config,
            "local",
            sample,
            path,
            "events",
        ):
            return row
    return None


def goals_text(rows: list[dict[str, str]]) -> str:
    """Issue 17's goals against the rows (local runtime, engine wait ``events``), per configuration:
    judged on the warm path in steady state (what a caller sees), with the prewarmed and the cold
    path beside it."""
    lines = [
        "Goals of issue 17 (local runtime, engine wait `events`; met or not on the warm path in steady state, "
        "what a caller sees; prewarmed and cold beside it):",
        "",
    ]
    configs = list(dict.fromkeys(row["broker, database"] for row in rows))
    for label, sample, column, how, goal in GOALS:
        for config in configs:
            found = {path: _find(rows, config, sample, path) for path in (STEADY, PREWARMED, COLD)}
            if not any(found.values()):
                continue
            values = {path: _number(row[column]) if row else None for path, row in found.items()}
            steady = values[STEADY]
            if steady is None:
                verdict = "not measured"
            else:
                met = steady <= goal if how == "<=" else steady >= goal
                verdict = f"{steady:g}: {'met' if met else 'not met'}"
            beside = [f"{path} {value:g}" for path, value in values.items() if path != STEADY and value is not None]
            cold, warm = values[COLD], steady
            if cold and warm:
                ratio = cold / warm if how == "<=" else warm / cold
                beside.append(f"warm steady {ratio:.1f}x {'faster' if how == '<=' else 'more'} than cold")
            taken = found[STEADY]["warm taken"] if found[STEADY] and column.startswith("latency") else ""
            if found[STEADY] and column == "gateway exec/s":
                taken = found[STEADY]["bursts warm taken"]
            extra = f"; warm taken {taken}" if taken and taken != NOT_MEASURED else ""
            lines.append(
                f"- {label} {'≤' if how == '<=' else '≥'} {goal:g} ({config}): {verdict}"
                f" ({', '.join(beside) or 'nothing else measured'}{extra})"
            )
    for config in configs:
        sizes = []
        for sample in ("sum", "qiskit_bell"):
            row = _find(rows, config, sample, PREWARMED)
            if row and _number(row["idle warm runner MB"]) is not None:
                sizes.append(f"{sample} {row['idle warm runner MB']} MB")
        memory = ", ".join(sizes) or "not measured"
        lines.append(f"- memory of one idle warm runner ({config}): {memory}")
    lines.append(f"- memory of a template process: {TEMPLATE_NOT_BUILT}")
    return "\n".join(lines)


# --- the child: one configuration --------------------------------------------------------------------


def _django_child() -> None:
    """What a benchmark's child process does first: its database made and migrated, Django set up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planqk_portal.settings")
    _ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _child(args: argparse.Namespace) -> int:
    _django_child()
    from django.conf import settings

    from accounts.models import User

    owner, _ = User.objects.get_or_create(email="bench-jobs@example.com")
    warm_settings = {
        name: getattr(settings, f"PLANQK_WARM_{name}") for name in ("MIN_RUNNERS", "MAX_RUNNERS", "IDLE_SECONDS")
    }
    print(
        "WARM PLANQK_WARM_MIN_RUNNERS={MIN_RUNNERS}, PLANQK_WARM_MAX_RUNNERS={MAX_RUNNERS}, "
        "PLANQK_WARM_IDLE_SECONDS={IDLE_SECONDS}, PLANQK_WARM_MEMORY_MB={memory}".format(
            **warm_settings, memory=settings.PLANQK_WARM_MEMORY_MB
        ),
        flush=True,
    )
    in_process: dict[str, tuple[list[float], list[float]]] = {}
    for runtime in args.runtimes.split(","):
        if runtime == "docker" and not _docker_answers():
            print("docker: no engine answers; skipped", file=sys.stderr)
            continue
        for sample in args.samples.split(","):
            try:
                _sample(args, owner, runtime, sample, in_process)
            except Exception as exc:
                if runtime == "local":
                    raise
                # Another runtime's failure (its engine went away...) costs its rows, not the run's.
                note = f"failed: {type(exc).__name__}: {exc}"[:400]
                print(f"{runtime} {sample}: {note}", file=sys.stderr)
                print("ROW " + json.dumps({"runtime": runtime, "sample": sample, "path": NOT_MEASURED,
                                           "engine wait": NOT_MEASURED, "note": note}), flush=True)  # fmt: skip
    return 0


def _sample(
    args: argparse.Namespace,
    owner: Any,
    runtime: str,
    sample: str,
    in_process: dict[str, tuple[list[float], list[float]]],
) -> None:
    """Every row of one sample on one runtime, printed as ``ROW <json>`` lines."""
    version, source = _build(owner, sample, runtime)
    try:
        _sample_rows(args, owner, version, source, sample, in_process)
    finally:
        _remove_build(version)


def _sample_rows(
    args: argparse.Namespace,
    owner: Any,
    version: Any,
    source: Path,
    sample: str,
    in_process: dict[str, tuple[list[float], list[float]]],
) -> None:
    runtime = version.runtime
    data, params = SAMPLE_INPUT[sample]
    runs = max(5, args.runs // 3) if not args.quick else 2
    direct = _direct(version, source, runtime, data, params, runs=runs)
    if runtime == "local" and sample not in in_process:
        python = str(Path(version.build_handle["env_dir"]) / "bin" / "python")
        in_process[sample] = inprocess.measure(python, source, data, params, runs=max(runs, args.runs))
    server_ms, client_ms = in_process.get(sample, ([], []))
    inproc = percentile(server_ms, 50) if server_ms else None
    gateway = _Gateway(version, owner) if sample == "sum" and runtime == "local" else None
    try:
        for path in args.paths.split(","):
            warm = path == "warm"
            if warm and (note := _no_warm(runtime)):
                print("ROW " + json.dumps({"runtime": runtime, "sample": sample, "path": "warm",
                                           "engine wait": NOT_MEASURED, "note": note}), flush=True)  # fmt: skip
                continue
            bare = _runtime_only(version, runtime, data, params, runs=runs, warm=warm)
            for wait_mode in (args.warm_waits if warm else args.waits).split(","):
                rows = _measure(args, sample, version, owner, data, params, wait_mode, gateway, warm=warm)
                for row in rows:
                    ours = percentile(row.pop("_latencies"), 50)
                    row.update(
                        {
                            "runtime": runtime,
                            "sample": sample,
                            "engine wait": wait_mode,
                            "runtime p50 ms": f"{percentile(bare[row['path']], 50):.0f}",
                            "fresh process p50 ms": f"{percentile(direct, 50):.0f}",
                            "in-process p50 ms": f"{inproc:.1f}" if inproc else NOT_MEASURED,
                            "in-process via HTTP p50 ms": f"{percentile(client_ms, 50):.1f}"
                            if client_ms
                            else NOT_MEASURED,
                            "ours / in-process": f"{ours / inproc:.0f}" if inproc else NOT_MEASURED,
                            "ours / fresh process": f"{ours / percentile(direct, 50):.1f}",
                        }
                    )
                    # The runtime-alone phase saw idle runners too, when the jobs' phase did not.
                    if row["path"] == PREWARMED and "idle warm runner MB" not in row and bare.get("_memory_kb"):
                        row["idle warm runner MB"] = f"{percentile(bare['_memory_kb'], 50) / 1024:.0f}"
                    print("ROW " + json.dumps(row), flush=True)
                    print(json.dumps(row), file=sys.stderr)
            if warm:
                _stop_warm(version, runtime)
    finally:
        if gateway is not None:
            gateway.stop()
        _stop_warm(version, runtime)


def _measure(
    args: argparse.Namespace,
    sample: str,
    version: Any,
    owner: Any,
    data: Any,
    params: Any,
    wait_mode: str,
    gateway: _Gateway | None,
    *,
    warm: bool,
) -> list[dict[str, Any]]:
    """The rows of one path with the engine waiting ``wait_mode``: latency, bursts, the gateway.
    Cold: one row. Warm: the prewarmed row (latency and memory) and the steady row (latency back to
    back, bursts and the gateway)."""
    steady: dict[str, Any] = {"path": STEADY if warm else COLD}
    rows = [steady]
    burst_jobs: list[Any] = []
    burst_ids: list[Any] = []
    for concurrency in (1, 2):
        submit = lambda: _submit(version, owner, data, params)  # noqa: E731
        worker = _warm_worker(concurrency, wait_mode, submit, warm=warm, runtime=version.runtime)
        try:
            if concurrency == 1:
                if warm:
                    prewarmed: dict[str, Any] = {"path": PREWARMED}
                    jobs, memory = _prewarmed(version, owner, data, params, args.runs)
                    _latency(prewarmed, jobs)
                    if memory:
                        prewarmed["idle warm runner MB"] = f"{percentile(memory, 50) / 1024:.0f}"
                    rows.insert(0, prewarmed)
                jobs = _sequential(version, owner, data, params, args.runs)
                _latency(steady, jobs)
            burst = args.burst if sample == "sum" else max(3, args.burst // 3)
            jobs = _wait_all([_submit(version, owner, data, params) for _ in range(burst)], timeout=900)
            _check(jobs)
            burst_jobs += jobs
            span = (max(j.ended_at for j in jobs) - min(j.created_at for j in jobs)).total_seconds()
            steady[f"exec/s {concurrency} worker{'s' if concurrency > 1 else ''}"] = f"{burst / span:.2f}"
            if concurrency == 1 and gateway is not None:
                rate, ids = gateway.burst(args.gateway_burst, data, params)
                steady["gateway exec/s"] = f"{rate:.2f}"
                burst_ids += ids
        finally:
            _stop_worker(worker)
    ids = [job.pk for job in burst_jobs] + burst_ids
    steady["bursts warm taken"] = f"{_warm_taken(ids)}/{len(ids)}"
    return rows


def _prewarmed(version: Any, owner: Any, data: Any, params: Any, runs: int) -> tuple[list[Any], list[float]]:
    """``runs`` jobs one after the other, each when the pool is settled (:func:`_settle`), and the
    memory of an idle runner (kB) seen before each."""
    rt = _runtime(version.runtime, warm=True)
    spec = _engine_spec(rt, version)
    memory: list[float] = []

    def settle() -> None:
        kb = _settle(rt, spec, version)
        if kb is not None:
            memory.append(kb)

    return _sequential(version, owner, data, params, runs, before=settle), memory


def _sequential(version: Any, owner: Any, data: Any, params: Any, runs: int, *, before: Any = None) -> list[Any]:
    """``runs`` jobs one after the other, each submitted when the one before is final (after
    ``before()``, when given)."""
    jobs = []
    for _ in range(runs):
        if before is not None:
            before()
        jobs.append(_wait_all([_submit(version, owner, data, params)])[0])
    _check(jobs)
    return jobs


def _latency(row: dict[str, Any], jobs: list[Any]) -> None:
    """The latency columns of ``row`` from ``jobs`` (and how many of them took a warm runner)."""
    total = [(j.ended_at - j.created_at).total_seconds() * 1000 for j in jobs]
    wait = [(j.started_at - j.created_at).total_seconds() * 1000 for j in jobs]
    row["_latencies"] = total
    row["latency p50 ms"] = f"{percentile(total, 50):.0f}"
    row["latency p95 ms"] = f"{percentile(total, 95):.0f}"
    row["to claim p50 ms"] = f"{percentile(wait, 50):.0f}"
    row["run p50 ms"] = f"{percentile([t - w for t, w in zip(total, wait, strict=True)], 50):.0f}"
    row["warm taken"] = f"{_warm_taken([j.pk for j in jobs])}/{len(jobs)}"


def _warm_taken(job_ids: list[Any]) -> int:
    """How many of these jobs took a warm runner: the engine says so in the job's log."""
    from jobs.models import JobLogChunk

    found = JobLogChunk.objects.filter(job_id__in=job_ids, text__contains=WARM_LOG)
    return found.values("job_id").distinct().count()


def _runtime(name: str, *, warm: bool) -> Any:
    """The runtime ``name`` as the worker has it, with warm runners on or off (the setting)."""
    from django.test import override_settings

    from jobs.runtime_factory import get_runtime

    with override_settings(PLANQK_WARM="on" if warm else "off"):
        return get_runtime(name)


def _no_warm(runtime: str) -> str:
    """Why the warm path of ``runtime`` cannot be measured ("" when it can): no warm runners, or
    PLANQK_WARM=on does not turn them on for it (the worker reads the same settings)."""
    rt = _runtime(runtime, warm=True)
    if not hasattr(rt, "prewarm"):
        return f"the warm path: the {runtime} runtime has no warm runners (no prewarm) yet"
    config = getattr(getattr(rt, "warm", None), "config", None)
    if config is not None and not config.enabled:
        return (
            f"the warm path: PLANQK_WARM=on does not turn on the {runtime} runtime's warm runners "
            f"(jobs.runtime_factory gives its configuration no warm settings), so a worker has none"
        )
    return ""


def _engine_spec(rt: Any, version: Any, *, data: Any = None, params: Any = None) -> Any:
    """An execution spec of ``version`` with the limits the engine gives its jobs (jobs.engine),
    so a runner prewarmed with it has the shape the worker's executions take."""
    from django.conf import settings

    from jobs.engine import output_limits, output_max_bytes
    from jobs.models import Job
    from runtimes import ExecutionSpec

    service = version.service
    # The job's own timeout, as admission computed it: the warm-up jobs ran before this.
    job = Job.objects.filter(service_version=version).order_by("-created_at").first()
    timeout = int(job.timeout_seconds) if job else int(settings.PLANQK_JOB_DEFAULT_TIMEOUT)
    return ExecutionSpec(
        execution_id=f"bench-{uuid.uuid4().hex[:12]}",
        build=rt.build_handle(version.build_handle),
        data=data,
        params=params,
        output_limits=output_limits(),
        memory_mb=min(int(service.memory_mb), int(settings.PLANQK_JOB_MAX_MEMORY_MB)),
        cpus=min(float(service.cpus), float(settings.PLANQK_JOB_MAX_CPUS)),
        timeout_seconds=timeout,
        max_pids=int(settings.PLANQK_JOB_MAX_PIDS),
        max_output_bytes=output_max_bytes(),
    )


def _settle(rt: Any, spec: Any, version: Any, timeout: float = 120) -> float | None:
    """Prewarm ``spec``'s shape and wait until a runner is ready and none is starting (no refill
    competes with what is measured next); the memory of one idle runner in kB, where the runtime
    tells it (the local runtime's pool state)."""
    deadline = time.monotonic() + timeout
    if rt.prewarm(spec, wait_seconds=timeout) < 1:
        raise RuntimeError(f"no warm runner of {version.runtime} became ready in {timeout:.0f} s")
    pool = getattr(rt, "warm", None)
    if pool is None or not hasattr(pool, "state"):
        return None
    while time.monotonic() < deadline:
        shapes = [shape for shape in pool.state() if shape["version_id"] == str(version.pk)]
        if shapes and all(shape["starting"] == 0 for shape in shapes) and any(shape["ready"] for shape in shapes):
            ready = sum(shape["ready"] for shape in shapes)
            return sum(shape["memory_kb"] for shape in shapes) / ready
        time.sleep(0.01)
    raise RuntimeError(f"the warm pool of {version.runtime} did not settle in {timeout:.0f} s")


def _stop_warm(version: Any, runtime: str, timeout: float = 60) -> None:
    """Stop this version's runners and forget its demand, so the next rows start from none: a
    runner a stopped worker was still starting is stopped once it is ready, or cleaned up by the
    pool's trim once it is gone (trim applies the host housekeeping's rules to the other shapes)."""
    rt = _runtime(runtime, warm=True)
    pool = getattr(rt, "warm", None)
    if pool is None or not hasattr(pool, "stop_versions"):
        return
    deadline = time.monotonic() + timeout
    while True:
        pool.stop_versions({str(version.pk)})
        pool.trim()
        left = [shape for shape in pool.state() if shape["version_id"] == str(version.pk)]
        if not any(shape["ready"] or shape["starting"] for shape in left):
            return
        if time.monotonic() > deadline:
            print(f"warm runners of {version.pk} still there after {timeout:.0f} s: {left}", file=sys.stderr)
            return
        time.sleep(0.2)


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

    base, added = VARIANTS.get(sample, (sample, ""))
    files = dict(sample_files(base))
    if added:
        program = files["src/program.py"].decode()
        head, future, rest = program.partition("from __future__ import annotations\n")
        files["src/program.py"] = (head + future + added + rest).encode()
    source = Path(tempfile.mkdtemp(prefix=f"bench-{sample}-"))
    write_files(source, files)
    service = Service.objects.create(
        owner=owner, name=f"{sample.replace('_', '-')}-{uuid.uuid4().hex[:6]}", title=SAMPLES[base].title
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


def _runtime_only(
    version: Any, runtime: str, data: Any, params: Any, *, runs: int, warm: bool
) -> dict[str, list[float]]:
    """Milliseconds from ``runtime.start`` until ``poll`` says it ended: the runtime without the
    platform, per row path (cold; or warm prewarmed and warm back to back), and the warm runners'
    idle memory in kB (``_memory_kb``)."""
    rt = _runtime(runtime, warm=warm)
    spec = _engine_spec(rt, version, data=data, params=params)
    if not warm:
        return {COLD: _starts(rt, spec, runs)}
    memory: list[float] = []

    def settle() -> None:
        kb = _settle(rt, spec, version)
        if kb is not None:
            memory.append(kb)

    times = {PREWARMED: _starts(rt, spec, runs, before=settle), STEADY: _starts(rt, spec, runs)}
    return {**times, "_memory_kb": memory}


def _starts(rt: Any, spec: Any, runs: int, *, before: Any = None) -> list[float]:
    import dataclasses

    times = []
    taken = 0
    for index in range(runs + 1):
        if before is not None:
            before()
        one = dataclasses.replace(spec, execution_id=f"bench-{uuid.uuid4().hex[:8]}-{index}")
        started = time.monotonic()
        handle = rt.start(one)
        while rt.poll(handle).running:
            time.sleep(0.005)
        times.append((time.monotonic() - started) * 1000)
        taken += bool(getattr(handle, "warm", False))
        rt.cleanup(handle)
    print(f"runtime alone{' (prewarmed)' if before else ''}: {taken}/{runs + 1} warm", file=sys.stderr)
    return times[1:]  # the first one warms the page cache


#: ``celery`` with Django set up and the modules the host heartbeat's thread imports at its first
#: beat (hosts.worker: hosts.*, hosts.warm.warm_reader: jobs.runtime_factory and the runtimes)
#: imported first, in the main thread. That thread imports them while the worker forks its pool;
#: a pool process forked in the middle of such an import inherits the module's import lock held
#: and waits for it forever when its first job imports the same module (seen: jobs claimed and
#: never started, about one worker start in four). Imported before any thread exists, no lock is
#: taken later. A workaround here until hosts.worker imports before it starts its thread.
HEARTBEAT_IMPORTS = (
    "jobs.runtime_factory", "jobs.engine", "hosts.routing", "hosts.selectors", "hosts.services", "hosts.warm",
    "runtimes.local", "runtimes.docker", "runtimes.external",
)  # fmt: skip
PRE_IMPORTED_CELERY = (
    "import importlib, os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'planqk_portal.settings'); "
    f"django.setup(); [importlib.import_module(name) for name in {HEARTBEAT_IMPORTS!r}]; "
    "from celery.__main__ import main; sys.argv[0] = 'celery'; sys.exit(main())"
)


def _start_worker(
    concurrency: int, wait_mode: str = "events", *, warm: bool = False, runtime: str = "local"
) -> subprocess.Popen[bytes]:
    from django.conf import settings

    log = ROOT / "var" / f"bench-worker-{concurrency}.log"
    cmd = [sys.executable, "-c", PRE_IMPORTED_CELERY, "-A", "planqk_portal", "worker", "-l", "warning",
           "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--concurrency", str(concurrency),
           "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
           "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    env = {**_server_env(), "PLANQK_ENGINE_WAIT": wait_mode, "PLANQK_WARM": "on" if warm else "off"}
    # Jobs go to their runtime's queue (hosts.routing): the worker runs the runtime measured.
    env["PLANQK_HOST_RUNTIMES"] = runtime
    # A session of its own: stopping it stops its pool processes too. The log stays open with it.
    out = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(1)
    if proc.poll() is not None:
        raise RuntimeError(log.read_text())
    return proc


def _stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """Stop the worker and its pool; killed when its warm shutdown hangs (seen with the filesystem broker)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        print(f"worker {proc.pid} did not stop in 60 s; killed", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


#: How long a new worker may take for a warm-up job, and how often one is started again.
WARM_UP_SECONDS = 60
WORKER_ATTEMPTS = 3


def _warm_worker(
    concurrency: int, wait_mode: str, submit: Any, *, warm: bool = False, runtime: str = "local"
) -> subprocess.Popen[bytes]:
    """A worker that has run three jobs (imports, connections, the page cache); started again
    when it does not finish one: a prefork worker was seen to hang, jobs PENDING on the
    filesystem broker, and jobs claimed but never started on Redis (a pool process forked while
    the host heartbeat's thread was importing the runtime module waits for that import's lock
    forever; its log tail goes to stderr)."""
    for attempt in range(1, WORKER_ATTEMPTS + 1):
        worker = _start_worker(concurrency, wait_mode, warm=warm, runtime=runtime)
        try:
            for _ in range(3):
                _check(_wait_all([submit()], timeout=WARM_UP_SECONDS))
            return worker
        except RuntimeError as exc:
            _stop_worker(worker)
            log = ROOT / "var" / f"bench-worker-{concurrency}.log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
            if attempt == WORKER_ATTEMPTS:
                raise
            print(
                f"a worker of concurrency {concurrency} did not finish a warm-up job in {WARM_UP_SECONDS} s ({exc}): "
                f"starting another; its log ended:\n{tail}",
                file=sys.stderr,
            )
    raise AssertionError("unreachable")


def _server_env() -> dict[str, str]:
    """What the worker and the production server of the benchmark run with (this child's database)."""
    return {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
        # The burst measures executions, not the token endpoint's per-client limit.
        "PLANQK_TOKEN_REQUESTS_PER_MINUTE": "0",
    }


class _Gateway:
    """The sum version published with a plan without practical limits, an application subscribed
    to it, and the portal under its production server on loopback (one granian worker)."""

    def __init__(self, version: Any, owner: Any) -> None:
        from accounts.models import User
        from applications.services import application_create, subscription_create
        from bench.gateway import _free_port, _start_server, _stop
        from services.models import Lifecycle, PricingPlan

        service = version.service
        service.lifecycle, service.published_version = Lifecycle.PUBLISHED, version
        service.save()
        plan = PricingPlan.objects.create(
            service=service, name="Bench", requests_per_minute=10_000_000, max_concurrent=10_000_000
        )
        subscriber, _ = User.objects.get_or_create(email="bench-jobs-subscriber@example.com")
        issued = application_create(owner=subscriber, name=f"bench {uuid.uuid4().hex[:6]}")
        subscription_create(application=issued.application, service=service, plan=plan)
        self.basic = base64.b64encode(f"{issued.consumer_key}:{issued.secret}".encode()).decode()
        self.path = f"/gateway/{owner.uuid}/{service.name}/{version.version}/"
        self.port = _free_port()
        self._stop = _stop
        self.server = _start_server(_server_env(), "granian", self.port, 1, 2)

    def burst(self, count: int, data: Any, params: Any) -> tuple[float, list[str]]:
        """Executions per second of ``count`` sum executions through the gateway, as a client sees
        them, and the executions' ids."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        started = time.monotonic()
        conn.request(
            "POST", "/gateway/token", "grant_type=client_credentials",
            {"Authorization": f"Basic {self.basic}", "Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"the gateway issued no token: {response.status} {body[:300]!r}")
        bearer = {"Authorization": f"Bearer {json.loads(body)['access_token']}"}
        pending = []
        payload = json.dumps({"data": data, "params": params})
        for _ in range(count):
            conn.request("POST", self.path, payload, {**bearer, "Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read()
            if response.status not in (200, 201):
                raise RuntimeError(f"the gateway refused an execution: {response.status} {body[:300]!r}")
            pending.append(json.loads(body)["id"])
        ids = list(pending)
        give_up = time.monotonic() + 900
        while pending:
            if time.monotonic() > give_up:
                raise RuntimeError(f"{len(pending)} gateway executions not final after 900 s")
            for execution_id in list(pending):
                conn.request("GET", f"{self.path}{execution_id}", headers=bearer)
                status = json.loads(conn.getresponse().read())["status"]
                if status in ("SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"):
                    if status != "SUCCEEDED":
                        raise RuntimeError(f"a gateway execution ended {status}")
                    pending.remove(execution_id)
            time.sleep(0.005)
        span = time.monotonic() - started
        conn.close()
        return count / span, ids

    def stop(self) -> None:
        self._stop(self.server)


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
