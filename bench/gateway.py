"""Gateway throughput and latency: token endpoint, POST / (start an execution), GET /{id} (status).

``python -m bench gateway [--server granian|gunicorn] [--workers N] [--threads N] [--seconds S] [--validation on|off]``

Runs the portal under its production server (``python -m planqk_portal.server``: granian; or
gunicorn with ``--server gunicorn``, for comparison) on 127.0.0.1 against PostgreSQL and Redis and
drives it with a small asyncio HTTP/1.1 load generator (keep-alive connections, stdlib only).
Everything is bounded: each phase stops after ``--seconds`` or ``--max-requests``, whichever
comes first. No Celery worker runs, so started executions stay PENDING: the POST numbers are
the gateway's own cost (authentication, limits, input checks, the job row, the broker message).

Uses its own database (``bench_gateway``, recreated) and Redis db (7) unless
``BENCH_DATABASE_URL`` / ``BENCH_REDIS_URL`` say otherwise. Writes bench/results/gateway.md
(granian) or bench/results/gateway-gunicorn.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import percentile, write_table
from planqk_portal.server import default_workers

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/bench_gateway"
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
SUM_INPUT = json.dumps({"data": {"values": [100, 50, 200, 70, 0.69]}, "params": {"round_off": False}}).encode()
INVALID_SUM_INPUT = json.dumps({"data": {"values": "abc"}}).encode()


# --- the load generator --------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    bodies: list[bytes] = field(default_factory=list)
    elapsed: float = 0.0
    keep_bodies: bool = False


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return status, headers, body


async def _connection(host: str, port: int, make: callable, phase: Phase, deadline: float, budget: list[int]) -> None:
    reader = writer = None
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        if writer is None:
            reader, writer = await asyncio.open_connection(host, port)
        request = make()
        started = time.perf_counter()
        writer.write(request)
        try:
            status, headers, body = await _read_response(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            reader = writer = None
            phase.statuses["connection-error"] += 1
            continue
        phase.latencies.append(time.perf_counter() - started)
        phase.statuses[status] += 1
        if phase.keep_bodies and status in (200, 201):
            phase.bodies.append(body)
        if headers.get("connection", "").lower() == "close":
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def run_phase(
    name: str, host: str, port: int, make: callable, *, connections: int, seconds: float, max_requests: int,
    keep_bodies: bool = False, server_pid: int,
) -> Phase:  # fmt: skip
    phase = Phase(name=name, keep_bodies=keep_bodies)
    budget = [max_requests]
    cpu_before = _process_tree_cpu(server_pid)
    client_before = time.process_time()

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(_connection(host, port, make, phase, deadline, budget) for _ in range(connections)))
        phase.elapsed = time.perf_counter() - started

    asyncio.run(main())
    phase.server_cpu = _process_tree_cpu(server_pid) - cpu_before
    phase.client_cpu = time.process_time() - client_before
    return phase


async def _send(
    pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]], host: str, port: int, request: bytes,
) -> tuple[int, bytes]:  # fmt: skip
    """One request on an idle pooled connection (or a new one); the connection goes back after."""
    reader, writer = pool.pop() if pool else await asyncio.open_connection(host, port)
    writer.write(request)
    try:
        status, headers, body = await _read_response(reader)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
        raise
    if headers.get("connection", "").lower() == "close":
        writer.close()
    else:
        pool.append((reader, writer))
    return status, body


def run_rate_phase(
    name: str, host: str, port: int, make: callable, *, rate: float, seconds: float, max_connections: int,
    server_pid: int, keep_bodies: bool = False,
) -> Phase:  # fmt: skip
    """Open loop: requests start on a fixed schedule, ``rate`` per second, whatever the answers do.

    A closed loop (N connections, each sending when its last answer arrives) measures latency at
    saturation, where it is set by N; this measures it at a given load. Latency counts from the
    scheduled start, so a request that had to wait for a free connection is charged for it
    (no coordinated omission). At most ``max_connections`` requests are in flight.
    """
    phase = Phase(name=name, keep_bodies=keep_bodies)
    cpu_before = _process_tree_cpu(server_pid)
    client_before = time.process_time()

    async def one(scheduled: float, pool: list, slots: asyncio.Semaphore) -> None:
        async with slots:
            try:
                status, body = await _send(pool, host, port, make())
            except (asyncio.IncompleteReadError, ConnectionError):
                phase.statuses["connection-error"] += 1
                return
        phase.latencies.append(time.perf_counter() - scheduled)
        phase.statuses[status] += 1
        if keep_bodies and status in (200, 201):
            phase.bodies.append(body)

    async def main() -> None:
        pool: list = []
        slots = asyncio.Semaphore(max_connections)
        tasks = []
        started = time.perf_counter()
        for number in range(int(rate * seconds)):
            scheduled = started + number / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(scheduled, pool, slots)))
        await asyncio.gather(*tasks)
        phase.elapsed = time.perf_counter() - started
        for _, writer in pool:
            writer.close()

    asyncio.run(main())
    phase.server_cpu = _process_tree_cpu(server_pid) - cpu_before
    phase.client_cpu = time.process_time() - client_before
    return phase


def _process_tree_cpu(root: int) -> float:
    """User + system CPU seconds of ``root`` and its children (the server's main process and workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root or ppid == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive", f"Content-Length: {len(body)}"]
    lines += [f"{key}: {value}" for key, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _one_status(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        return int(sock.recv(64).split(b" ", 2)[1])


# --- the portal under its server -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "PLANQK_QUEUE": "bench-gateway",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-" + "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
        # The benchmark measures the token endpoint's throughput, not its per-client limit.
        "PLANQK_TOKEN_REQUESTS_PER_MINUTE": "0",
    }


def _recreate_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _seed(env: dict[str, str], applications: int, *, validation: bool = True) -> dict:
    """A provider's READY service with a plan without practical limits and subscribed applications."""
    script = f"""
import json
from accounts.models import User
from applications.services import application_create, subscription_create
from services.models import BuildStatus, PricingPlan, Service, ServiceVersion
provider = User.objects.create_user(email="provider@bench.example", password="bench-password-1")
subscriber = User.objects.create_user(email="subscriber@bench.example", password="bench-password-1")
service = Service.objects.create(owner=provider, name="sum", lifecycle="PUBLISHED")
# The sum sample's spec, so admission checks every POST against its data/params schemas (issue 18).
from planqk_samples import sample_files
spec = sample_files("sum")["openapi-spec.yml"].decode() if {validation!r} else ""
version = ServiceVersion.objects.create(
    service=service, version="1.0.0", status=BuildStatus.READY, runtime="local", api_spec=spec
)
service.published_version = version
service.save()
plan = PricingPlan.objects.create(
    service=service, name="Bench", requests_per_minute=10_000_000, max_concurrent=10_000_000
)
apps = []
for number in range({applications}):
    issued = application_create(owner=subscriber, name=f"bench {{number}}")
    subscription_create(application=issued.application, service=service, plan=plan)
    apps.append({{"key": issued.consumer_key, "secret": issued.secret}})
print("SEED" + json.dumps({{"path": f"/gateway/{{provider.uuid}}/sum/1.0.0/", "apps": apps}}))
"""
    out = _shell(env, script)
    return json.loads(next(line for line in out.splitlines() if line.startswith("SEED"))[4:])


def _shell(env: dict[str, str], script: str) -> str:
    """Run ``script`` in ``manage.py shell``, on stdin: thousands of ids exceed one argument's limit."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell"],
        input=script,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


LOG = ROOT / "var" / "bench-gateway-server.log"


def _server_command(server: str, port: int, workers: int, threads: int) -> list[str]:
    if server == "granian":
        from planqk_portal.server import server_command

        return server_command(host="127.0.0.1", port=port, workers=workers, threads=threads)
    # For comparison: gunicorn's threaded workers with keep-alive, as a proxy would talk to them.
    return [
        str(Path(sys.executable).with_name("gunicorn")), "planqk_portal.wsgi", "-b", f"127.0.0.1:{port}",
        "-w", str(workers), "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "30",
        "--backlog", "512", "--log-level", "warning",
    ]  # fmt: skip


def _start_server(env: dict[str, str], server: str, port: int, workers: int, threads: int) -> subprocess.Popen:
    """The portal under ``server`` on 127.0.0.1:``port``, once it answers /healthz."""
    LOG.parent.mkdir(parents=True, exist_ok=True)
    log = LOG.open("wb")  # a file, not a pipe: a full pipe would block the workers mid-request
    command = _server_command(server, port, workers, threads)
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{server} exited: {LOG.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if b" 200 " in sock.recv(200):
                    return proc
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{server} did not answer /healthz within 60 s")


def _stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _flush_redis(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


# --- main ----------------------------------------------------------------------------------------


def _row(phase: Phase, ok: set[int], load: str) -> dict[str, str]:
    good = sum(count for status, count in phase.statuses.items() if status in ok)
    ms = [value * 1000 for value in phase.latencies]
    others = {str(k): v for k, v in phase.statuses.items() if k not in ok}
    return {
        "phase": phase.name,
        "load": load,
        "requests": str(sum(phase.statuses.values())),
        "ok": str(good),
        "other answers": ", ".join(f"{k} x{v}" for k, v in sorted(others.items())) or "-",
        "req/s": f"{good / phase.elapsed:.0f}" if phase.elapsed else "-",
        "p50 ms": f"{percentile(ms, 50):.1f}",
        "p95 ms": f"{percentile(ms, 95):.1f}",
        "p99 ms": f"{percentile(ms, 99):.1f}",
        "server CPU ms/req": f"{phase.server_cpu * 1000 / max(len(ms), 1):.2f}",
        "load generator CPU ms/req": f"{phase.client_cpu * 1000 / max(len(ms), 1):.2f}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=("granian", "gunicorn"), default="granian")
    # The defaults of python -m planqk_portal.server: what a deployment on this machine would run.
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--max-requests", type=int, default=50_000, help="per phase")
    parser.add_argument("--applications", type=int, default=8)
    # The targets, measured as latency at that load (open loop), besides the capacity.
    parser.add_argument("--post-rate", type=float, default=200.0, help="POST /s of the open-loop phase")
    parser.add_argument("--status-rate", type=float, default=1000.0, help="status GET/s of the open-loop phase")
    parser.add_argument("--max-in-flight", type=int, default=64, help="connections of the open-loop phases")
    # off: the version has no spec, so admission checks no schema (the POST cost before issue 18),
    # for a comparison on the same machine at the same time; written to gateway-no-validation.md.
    parser.add_argument("--validation", choices=("on", "off"), default="on")
    args = parser.parse_args(argv)

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    for url in (database_url, redis_url):
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"load tests run on this machine only, not against {url}")
    env = _environment(database_url, redis_url)
    _recreate_database(database_url)
    _flush_redis(redis_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    seed = _seed(env, args.applications, validation=args.validation == "on")
    port = _free_port()
    host = f"127.0.0.1:{port}"
    load_before = os.getloadavg()
    server = _start_server(env, args.server, port, args.workers, args.threads)
    try:
        bounded = {
            "connections": args.connections,
            "seconds": args.seconds,
            "max_requests": args.max_requests,
            "server_pid": server.pid,
        }
        basics = [
            {"Authorization": "Basic " + base64.b64encode(f"{a['key']}:{a['secret']}".encode()).decode()}
            for a in seed["apps"]
        ]
        token_form = b"grant_type=client_credentials"

        def token_request() -> bytes:
            headers = {**random.choice(basics), "Content-Type": "application/x-www-form-urlencoded"}
            return _request("POST", "/gateway/token", host, headers, token_form)

        tokens_phase = run_phase("POST /gateway/token", "127.0.0.1", port, token_request, keep_bodies=True, **bounded)
        tokens = [json.loads(body)["access_token"] for body in tokens_phase.bodies[: 4 * len(basics)]]
        if not tokens:
            raise SystemExit(f"no token was issued: {dict(tokens_phase.statuses)}")
        bearers = [{"Authorization": f"Bearer {token}", "Content-Type": "application/json"} for token in tokens]

        def post_request() -> bytes:
            return _request("POST", seed["path"], host, random.choice(bearers), SUM_INPUT)

        # Validation must be on: an input the spec refuses is a 422 before anything is measured.
        refused = _one_status(port, _request("POST", seed["path"], host, bearers[0], INVALID_SUM_INPUT))
        if (refused == 422) != (args.validation == "on"):
            raise SystemExit(f"an input the sum spec refuses got {refused} with --validation {args.validation}")

        post_phase = run_phase("POST / (start execution)", "127.0.0.1", port, post_request, keep_bodies=True, **bounded)
        at_rate = {"seconds": args.seconds, "max_connections": args.max_in_flight, "server_pid": server.pid}
        post_rate_phase = run_rate_phase(
            "POST / (start execution)", "127.0.0.1", port, post_request, rate=args.post_rate, keep_bodies=True,
            **at_rate,
        )  # fmt: skip
        started = [json.loads(body)["id"] for body in post_phase.bodies + post_rate_phase.bodies]
        if not started:
            raise SystemExit(f"no execution was started: {dict(post_phase.statuses)}")

        # Each status GET asks for an execution with a token of the application that started it.
        pairs = _pairs(env, started[:5000], tokens, seed)

        def status_request() -> bytes:
            job_id, token = random.choice(pairs)
            return _request("GET", f"{seed['path']}{job_id}", host, {"Authorization": f"Bearer {token}"})

        status_phase = run_phase("GET /{id} (status)", "127.0.0.1", port, status_request, **bounded)
        status_rate_phase = run_rate_phase(
            "GET /{id} (status)", "127.0.0.1", port, status_request, rate=args.status_rate, **at_rate
        )
    finally:
        _stop(server)
    load_after = os.getloadavg()
    _flush_redis(redis_url)

    closed = f"{args.connections} connections, as fast as answered"
    rows = [
        _row(tokens_phase, {200}, closed),
        _row(post_phase, {201}, closed),
        _row(post_rate_phase, {201}, f"{args.post_rate:g}/s on schedule"),
        _row(status_phase, {200}, closed),
        _row(status_rate_phase, {200}, f"{args.status_rate:g}/s on schedule"),
    ]
    server_note = (
        "python -m planqk_portal.server, keep-alive" if args.server == "granian" else "gthread workers, keep-alive"
    )
    checked = (
        "the check of its input against the sum sample's data/params schemas (compiled once per version and process)"
        if args.validation == "on"
        else "no schema check (--validation off: the version has no spec)"
    )
    notes = (
        f"{args.server} with {args.workers} processes x {args.threads} threads ({server_note}); an "
        "asyncio load generator in one process on the same machine; PostgreSQL and Redis on 127.0.0.1; no Celery "
        f"worker (executions stay PENDING). Each phase runs at most {args.seconds:g} s (and {args.max_requests} "
        f"requests). Load average before/after: {load_before[0]:.1f}/{load_after[0]:.1f} (the machine is shared).\n\n"
        f"Two kinds of load. **{args.connections} connections, as fast as answered** (closed loop) measures "
        "capacity: the machine is saturated, so latency there is queueing set by the number of connections "
        "(Little's law: latency = connections / throughput). **N/s on schedule** (open loop) starts requests at a "
        "fixed rate whatever the answers do, and counts latency from the scheduled start, so a request that had "
        f"to wait for one of the {args.max_in_flight} connections is charged for it: the latency a client sees at "
        "that load. Targets (issue 6): ≥200 POST/s and ≥1,000 status GET/s of capacity, p95 < 100 ms at that "
        'load. "server CPU ms/req" is the CPU time of the portal\'s processes per answered request '
        "(PostgreSQL's and Redis's own not included); it varies with the machine's speed, which varies on this "
        "shared VM.\n\n"
        "Per request: a status GET is one Redis round trip (the rate counter) and one prepared SQL query (token → "
        "subscription → the job row); a token request is oauthlib plus one salted SHA-256 and three queries; a "
        "POST is the same authentication query (which also reads the version), the rate counter, "
        f"{checked}, then one transaction (lock the subscription row, count its unfinished executions up to "
        "the plan's limit, insert the job) and the Celery message after commit.\n\n"
        "`python -m bench gateway --server gunicorn` runs the same phases under gunicorn (gthread workers, the "
        "same processes and threads) and writes bench/results/gateway-gunicorn.md: it is why the production "
        "server is granian."
    )
    # The production server's numbers are the results; others are kept beside them for comparison.
    name = "gateway" if args.server == "granian" else f"gateway-{args.server}"
    if args.validation == "off":
        name += "-no-validation"
    write_table(name, f"Gateway throughput and latency ({args.server})", rows, notes)
    return 0


def _pairs(env: dict[str, str], job_ids: list[str], tokens: list[str], seed: dict) -> list[tuple[str, str]]:
    """(execution id, a token of the application that started it)."""
    script = f"""
import hashlib, json
from jobs.models import Job
from oauth2_provider.models import AccessToken
tokens = {json.dumps(tokens)}
by_app = {{}}
for token in tokens:
    checksum = hashlib.sha256(token.encode()).hexdigest()
    row = AccessToken.objects.filter(token_checksum=checksum).values("application_id").first()
    by_app.setdefault(row["application_id"], []).append(token)
jobs = Job.objects.filter(pk__in={json.dumps(job_ids)}).values_list("id", "application__oauth_application_id")
print("PAIRS" + json.dumps([[str(job), by_app[app][0]] for job, app in jobs if app in by_app]))
"""
    out = _shell(env, script)
    return [tuple(pair) for pair in json.loads(next(line for line in out.splitlines() if line.startswith("PAIRS"))[5:])]


if __name__ == "__main__":
    sys.exit(main())
