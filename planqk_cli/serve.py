"""``planqk serve``: the service API (ARCHITECTURE.md section 3) on the user code in this folder.

No portal, no database and no authentication: a ``ThreadingHTTPServer`` from the standard
library keeps the jobs in memory, and every execution is its own ``python -m planqk_runtime``
process (cwd = the folder, input files in a temporary ``INPUT_DIR``), exactly as the platform
runs it. The outcome comes from the runner's result channel only (:mod:`planqk_runtime.channel`),
as on the platform: what the program or its children print, also after the runner finished,
is log output.

Routes: ``GET /``, ``POST /`` (``data`` / ``params`` by value; ``dataRef`` / ``paramsRef`` are
a 400, there are no data pools locally), ``GET /{id}``, ``GET /{id}/result`` (409 while not
final), ``GET /{id}/interim-results``, ``PUT /{id}/cancel``, ``GET /{id}/logs``, ``GET /{id}/log``
(``{message, severity, timestamp}`` entries, 204 while none), and ``POST
/token``, which grants any client credentials, so clients written for the gateway run unchanged.
Swagger UI at ``/docs`` (from drf-spectacular-sidecar's files, no CDN) on the folder's
``openapi-spec.yml``, served at ``/openapi.yml`` with its ``servers`` pointed at this server.
Everything a client sees of the contract (the job object and its timestamps, the status names,
the error codes and statuses, every check of the request body) comes from
:mod:`planqk_service_api`, the package the gateway uses too, so both answer alike: ``POST /`` is
201 with the job as created (PENDING) and a ``Location``; errors are ``{"code", "detail"}``.

Both generations of user code (:mod:`planqk_runtime.generation`, detected from the folder at
start): a 2022 template folder gets the documented API above; a current-generation one (typed
``run()``, Kipu's ``qhub-serve`` way) gets the current API of :mod:`planqk_service_api.current`:
``GET /`` lists the executions, ``POST /`` takes the input's top-level keys plus ``$secrets``
(the program's ``SECRET_<NAME>`` variables, redacted from its log) and ``$tags``, ``GET /{id}``
the execution, ``GET /{id}/result`` the HAL result. Both have ``GET /{id}/result/{file}``: every
execution gets an ``OUTPUT_DIRECTORY``, and what the program leaves there (by
:mod:`planqk_runtime.outputs`' rules) are its result files, kept until the server stops.

Ctrl-C (or SIGTERM) stops the server and kills the executions still running.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import planqk_service_api as contract
from planqk_cli import term
from planqk_cli.errors import CliError, ExitCode
from planqk_cli.project import require_template
from planqk_runtime import channel
from planqk_runtime.generation import CURRENT, GenerationError, detect
from planqk_runtime.outputs import OUTPUT_DIRECTORY_ENV, OutputFile, OutputLimits, collect
from planqk_runtime.protocol import KIND_INTERIM, parse_output_line
from planqk_runtime.runner import GENERATION_ENV
from planqk_runtime.secrets import Redactor, clean_secrets, clean_tags, environment
from planqk_service_api import CANCELLED, FAILED, FINAL_STATES, PENDING, RUNNING, SUCCEEDED, ServiceAPIError, codes
from planqk_service_api import current as current_api
from planqk_service_api.current_schema import body_schemas_of, check_body
from planqk_service_api.schema import InputSchemas, SchemaError, input_schemas_of
from planqk_service_api.schema import check_input as schema_check

#: ``data`` and ``params`` by value are at most 1 MB each (ARCHITECTURE.md section 3).
MAX_INPUT_BYTES = contract.DEFAULT_INPUT_MAX_BYTES
#: The whole request body: both inputs plus the JSON around them.
MAX_BODY_BYTES = contract.body_max_bytes(MAX_INPUT_BYTES)
#: The runner's response (result or error) is at most this large.
MAX_RESPONSE_BYTES = channel.DEFAULT_MAX_RESPONSE_BYTES
#: Log lines kept per execution; beyond that a line says the output was cut.
MAX_LOG_LINES = 20_000
#: How long stopped executions get to end after SIGTERM before SIGKILL.
KILL_GRACE_SECONDS = 3.0

#: A hostile or stalled client (a Content-Length larger than the body it sends, an idle
#: connection) holds its thread this long at most.
SOCKET_TIMEOUT_SECONDS = 60.0
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")

# The runner's inputs come from INPUT_DIR only: values the user has set in this shell must not
# leak into every execution.
_CONTRACT_VARIABLES = ("DATA_VALUE", "PARAMS_VALUE", "BASE64_ENCODED", "ENTRY_POINT", "INPUT_DIR")

_STATIC_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LocalJob:
    """One execution of the user code and what it printed."""

    id: str
    input_dir: Path
    status: str = PENDING
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    process: subprocess.Popen[bytes] | None = None
    logs: list[str] = field(default_factory=list)
    #: When each line of ``logs`` arrived (``GET /{id}/log`` stamps its entries with it).
    log_times: list[datetime] = field(default_factory=list)
    interim_results: list[Any] = field(default_factory=list)
    response: dict[str, Any] | None = None
    logs_cut: bool = False
    current: bool = False
    tags: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    redact: Redactor = field(default_factory=lambda: Redactor(()))
    output_dir: Path | None = None
    files: list[OutputFile] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The job object of the service API (the current API's execution object for that generation)."""
        if self.current:
            return current_api.execution_object(
                id=self.id,
                status=self.status,
                created_at=self.created_at,
                started_at=self.started_at,
                ended_at=self.ended_at,
                tags=self.tags,
            )
        return contract.job_object(
            id=self.id,
            status=self.status,
            created_at=self.created_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
        )

    def add_log(self, line: str) -> None:
        # Secret values never reach the kept log, as on the platform.
        if len(self.logs) < MAX_LOG_LINES:
            self.logs.append(self.redact(line))
            self.log_times.append(_now())
        elif not self.logs_cut:
            self.logs_cut = True
            self.logs.append(f"[output cut at {MAX_LOG_LINES} lines]")
            self.log_times.append(_now())


class Executor:
    """Starts, watches and stops the executions; all job state is guarded by one lock."""

    def __init__(self, folder: Path, *, python: str, concurrency: int, generation: str = "2022") -> None:
        self.folder = folder
        self.python = python
        self.current = generation == CURRENT
        self.output_limits = OutputLimits()
        self.root = Path(tempfile.mkdtemp(prefix="planqk-serve-"))
        self.runner_path = _copy_runner(self.root / "runner")
        self.jobs: dict[str, LocalJob] = {}
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(max(1, concurrency))
        self.threads: list[threading.Thread] = []
        self.stopping = False

    def submit(
        self, inputs: dict[str, Any], *, secrets: dict[str, str] | None = None, tags: list[str] | None = None
    ) -> dict[str, Any]:
        """Create a PENDING job with ``inputs`` (``{"data"?: ..., "params"?: ...}``; for the current
        generation ``data`` is the request object) and start it.

        Returns the job object as created (PENDING), as the gateway answers: the execution may
        well be RUNNING by the time the answer is sent.
        """
        job_id = str(uuid.uuid4())
        input_dir = self.root / "jobs" / job_id
        input_dir.mkdir(parents=True)
        for name, value in inputs.items():
            (input_dir / f"{name}.json").write_text(json.dumps(value), encoding="utf-8")
        output_dir = self.root / "outputs" / job_id
        output_dir.mkdir(parents=True)
        job = LocalJob(
            id=job_id,
            input_dir=input_dir,
            current=self.current,
            tags=list(tags or ()),
            secrets=dict(secrets or {}),
            redact=Redactor((secrets or {}).values()),
            output_dir=output_dir,
        )
        with self.lock:
            if self.stopping:
                raise RuntimeError("the server is stopping")
            self.jobs[job_id] = job
            created = job.to_json()
            thread = threading.Thread(target=self._execute, args=(job,), name=f"job-{job_id[:8]}", daemon=True)
            self.threads.append(thread)
        thread.start()
        return created

    def get(self, job_id: str) -> LocalJob | None:
        with self.lock:
            return self.jobs.get(job_id)

    def listing(self) -> list[LocalJob]:
        """Every job, newest first (``GET /`` of the current API)."""
        with self.lock:
            return sorted(self.jobs.values(), key=lambda job: job.created_at, reverse=True)

    def snapshot(self, job: LocalJob) -> dict[str, Any]:
        with self.lock:
            return job.to_json()

    def cancel(self, job: LocalJob) -> dict[str, Any]:
        """Cancel a job that is not final yet (a final one is left alone); the job object."""
        with self.lock:
            if job.status in FINAL_STATES:
                return job.to_json()
            detail = "Cancelled while it was running." if job.status == RUNNING else "Cancelled before it started."
            job.status = CANCELLED
            job.ended_at = _now()
            job.response = {"code": codes.JOB_CANCELLED, "detail": detail}
            process = job.process
        if process is not None:
            _terminate(process)
        _log(f"job {job.id} CANCELLED")
        return self.snapshot(job)

    def _execute(self, job: LocalJob) -> None:
        try:
            with self.slots:
                self._run_process(job)
        except Exception as exc:  # a failure here must end the job, never leave it RUNNING
            self._finish(job, FAILED, {"code": codes.PLATFORM_ERROR, "detail": f"planqk serve failed: {exc}"})
        finally:
            shutil.rmtree(job.input_dir, ignore_errors=True)

    def _run_process(self, job: LocalJob) -> None:
        env = {key: value for key, value in os.environ.items() if key not in _CONTRACT_VARIABLES}
        env["INPUT_DIR"] = str(job.input_dir)
        env[OUTPUT_DIRECTORY_ENV] = str(job.output_dir)
        env["PYTHONUNBUFFERED"] = "1"
        if job.current:
            env[GENERATION_ENV] = CURRENT
            env.update(environment(job.secrets))
        # Only the runner is added to the path: the user's interpreter keeps its own packages.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.runner_path), env.get("PYTHONPATH")]))
        with self.lock:
            if job.status != PENDING:
                return  # cancelled while waiting for a slot
            # The runner's result channel, as the platform gives it: stdout and stderr are logs.
            read_fd, write_fd, channel_env = channel.pipe_for_runner(env)
            try:
                # A session of its own: Ctrl-C in the terminal reaches only us, and a whole process
                # group (the program's children too) can be stopped.
                job.process = subprocess.Popen(
                    [self.python, "-m", "planqk_runtime"],
                    cwd=self.folder,
                    env=channel_env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    pass_fds=(write_fd,),
                )
            except OSError as exc:
                os.close(read_fd)
                job.status, job.ended_at = FAILED, _now()
                job.response = {"code": codes.PLATFORM_ERROR, "detail": f"cannot start {self.python}: {exc}"}
                return
            finally:
                os.close(write_fd)
            job.status = RUNNING
            job.started_at = _now()
            process = job.process
        _log(f"job {job.id} RUNNING")
        readers = [
            threading.Thread(target=self._read_stdout, args=(job, process.stdout), daemon=True),
            threading.Thread(target=self._read_stderr, args=(job, process.stderr), daemon=True),
        ]
        for reader in readers:
            reader.start()
        collector = channel.ResponseCollector(max_bytes=MAX_RESPONSE_BYTES)
        try:
            # The first response on the channel, taken once the runner has exited; later writes do not count.
            channel.collect(read_fd, collector, done=lambda: process.poll() is not None)
        finally:
            os.close(read_fd)
        returncode = process.wait()
        # Children the program left behind would keep the pipes open (and run on): end them.
        with contextlib.suppress(ProcessLookupError, PermissionError, AttributeError):
            os.killpg(process.pid, signal.SIGKILL)
        for reader in readers:
            reader.join(timeout=10)
        self._collect_files(job)
        final = collector.response()
        if final is not None:
            payload = dict(final.payload)
            if not final.succeeded:
                payload["detail"] = job.redact(str(payload.get("detail") or ""))
            self._finish(job, SUCCEEDED if final.succeeded else FAILED, payload)
        else:
            self._finish(
                job,
                FAILED,
                {
                    "code": codes.JOB_NO_RESULT,
                    "detail": f"The program ended (exit code {returncode}) without printing its result; see the logs.",
                },
            )

    def _collect_files(self, job: LocalJob) -> None:
        """The result files the program left in its output directory (every process of it is gone)."""
        if job.output_dir is None:
            return
        files, notes = collect(job.output_dir, self.output_limits)
        with self.lock:
            job.files = files
            for note in notes:
                job.add_log(f"[planqk serve] {note}")

    def _read_stdout(self, job: LocalJob, stream: Any) -> None:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            kind, payload = parse_output_line(line)
            with self.lock:
                if kind == KIND_INTERIM:
                    job.interim_results.append(payload)
                else:
                    job.add_log(line)
        stream.close()

    def _read_stderr(self, job: LocalJob, stream: Any) -> None:
        for raw in stream:
            with self.lock:
                job.add_log(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        stream.close()

    def _finish(self, job: LocalJob, status: str, response: dict[str, Any]) -> None:
        with self.lock:
            if job.status in FINAL_STATES:
                return  # cancelled meanwhile: that stays the outcome
            job.status = status
            job.ended_at = _now()
            job.response = response
            took = (job.ended_at - (job.started_at or job.created_at)).total_seconds()
        detail = "" if status == SUCCEEDED else f": {response.get('code')}: {response.get('detail')}"
        _log(f"job {job.id} {status} in {took:.1f}s{detail}")

    def shutdown(self) -> int:
        """Stop every execution still going; the number stopped."""
        with self.lock:
            self.stopping = True
            active = [job for job in self.jobs.values() if job.status not in FINAL_STATES]
        for job in active:
            self.cancel(job)
        for thread in self.threads:
            thread.join(timeout=KILL_GRACE_SECONDS + 5)
        shutil.rmtree(self.root, ignore_errors=True)
        return len(active)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the execution's process group, SIGKILL when it does not end in time."""
    if os.name == "nt":  # no process groups or signals there: the process itself only
        process.kill()
        process.wait()
        return
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Children that left the group's leader behind are still in the group: finish them too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _copy_runner(dest: Path) -> Path:
    """Copy the stdlib-only runner package into ``dest``; returns the folder to put on PYTHONPATH.

    A copy rather than this interpreter's site-packages on the path, so ``--python`` can be any
    interpreter with the user's packages and sees nothing else of ours.
    """
    spec = importlib.util.find_spec("planqk_runtime")
    if spec is None or spec.origin is None:
        raise CliError("the runner (planqk_runtime) is not installed with the CLI")
    source = Path(spec.origin).parent
    target = dest / "planqk_runtime"
    target.mkdir(parents=True)
    for path in source.glob("*.py"):
        shutil.copy2(path, target / path.name)
    return dest


def default_python() -> str:
    """The interpreter of the active virtualenv or conda environment, else the CLI's own.

    `python -m src` runs in the environment the user activated; serve does the same, so the
    CLI itself may live elsewhere (e.g. installed with pipx).
    """
    for variable in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        prefix = os.environ.get(variable)
        if not prefix:
            continue
        for candidate in (Path(prefix) / "bin" / "python", Path(prefix) / "Scripts" / "python.exe"):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return sys.executable


def swagger_ui_dir() -> Path | None:
    """drf-spectacular-sidecar's ``swagger-ui-dist`` folder, found via importlib (no CDN)."""
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist"
        if (candidate / "swagger-ui-bundle.js").is_file():
            return candidate
    return None


_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - planqk serve</title>
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "/openapi.yml",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
</script>
</body>
</html>
"""


def _log(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class ServiceAPIServer(ThreadingHTTPServer):
    daemon_threads = True
    # Local development: a restarted `planqk serve` must get its port back at once.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], executor: Executor, folder: Path) -> None:
        self.executor = executor
        self.folder = folder
        self.swagger_dir = swagger_ui_dir()
        self._schema_warned = ""
        super().__init__(address, ServiceAPIHandler)

    def body_schemas(self) -> InputSchemas:
        """The current generation's request body schema of ``openapi-spec.yml`` (any object without one)."""
        try:
            text = (self.folder / "openapi-spec.yml").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return InputSchemas(None, None)
        try:
            return body_schemas_of(text)
        except SchemaError as exc:
            if self._schema_warned != text:
                self._schema_warned = text
                _log(f"openapi-spec.yml: input is not checked, its request body schema cannot be used: {exc}")
            return InputSchemas(None, None)

    def input_schemas(self) -> InputSchemas:
        """The folder's ``openapi-spec.yml`` input schemas, read again when the file changes."""
        try:
            text = (self.folder / "openapi-spec.yml").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return InputSchemas(None, None)
        try:
            return input_schemas_of(text)
        except SchemaError as exc:
            if self._schema_warned != text:  # once per version of the file
                self._schema_warned = text
                _log(f"openapi-spec.yml: input is not checked, its schemas cannot be used: {exc}")
            return InputSchemas(None, None)


class ServiceAPIHandler(BaseHTTPRequestHandler):
    """The routes of the service API plus /docs and /openapi.yml."""

    server: ServiceAPIServer
    server_version = "planqk-serve"
    _body_read = False
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_SECONDS

    # --- plumbing -------------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        return  # requests are logged by _send, one compact line each

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if not self._body_read and self.headers.get("Content-Length", "0").strip() not in ("", "0"):
            # A body we did not read would be taken for the next request on this connection.
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        path = urlsplit(self.path).path
        if not path.startswith("/docs/static/"):
            _log(f"{self.command} {path} {status}")

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _error(
        self, http_status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        self._fail(ServiceAPIError(code, detail, int(http_status), extra), headers)

    def _fail(self, error: ServiceAPIError, headers: dict[str, str] | None = None) -> None:
        # The contract's error shape and codes, so a client sees the gateway's answers locally.
        self._json(error.status, error.body(), headers)

    def _base_url(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

    def _route(self) -> list[str]:
        path = urlsplit(self.path).path
        return [part for part in path.split("/") if part]

    def _job(self, job_id: str) -> LocalJob | None:
        job = self.server.executor.get(job_id)
        if job is None:
            self._error(HTTPStatus.NOT_FOUND, codes.EXECUTION_NOT_FOUND, "No such execution.")
        return job

    def _method_not_allowed(self, allowed: str) -> None:
        self._error(
            HTTPStatus.METHOD_NOT_ALLOWED,
            codes.METHOD_NOT_ALLOWED,
            f"Use {allowed} here.",
            {"Allow": allowed},
            method=self.command,
        )

    def _dispatch(self) -> None:
        self._body_read = False
        try:
            self._handle()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client went away or stalled; nothing left to answer
        except ServiceAPIError as exc:
            self._fail(exc)
        except Exception as exc:
            _log(f"error handling {self.command} {self.path}: {exc!r}")
            with contextlib.suppress(Exception):
                self._error(
                    HTTPStatus.INTERNAL_SERVER_ERROR, codes.SERVER_ERROR, "planqk serve failed on this request."
                )

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    # --- routes ---------------------------------------------------------------------------------

    def _handle(self) -> None:
        parts = self._route()
        method = self.command
        current = self.server.executor.current
        if not parts:
            if method in ("GET", "HEAD"):
                if current:
                    return self._list()
                return self._json(HTTPStatus.OK, {"status": "Service is up and running"})
            if method == "POST":
                return self._submit_current() if current else self._submit()
            return self._method_not_allowed("GET, POST")
        if parts == ["token"] and method == "POST":
            return self._token()
        if parts[0] == "docs" and method in ("GET", "HEAD"):
            return self._docs(parts[1:])
        if parts == ["openapi.yml"] and method in ("GET", "HEAD"):
            return self._openapi()
        if len(parts) == 1:
            if method not in ("GET", "HEAD"):
                return self._method_not_allowed("GET")
            job = self._job(parts[0])
            if job is not None:
                self._json(HTTPStatus.OK, self.server.executor.snapshot(job))
            return None
        if len(parts) == 3 and parts[1] == "result":
            if method not in ("GET", "HEAD"):
                return self._method_not_allowed("GET")
            job = self._job(parts[0])
            if job is not None:
                self._result_file(job, unquote(parts[2]))
            return None
        if len(parts) == 2 and parts[1] in ("result", "interim-results", "logs", "log", "cancel"):
            wanted = "PUT" if parts[1] == "cancel" else "GET"
            if method != wanted and not (wanted == "GET" and method == "HEAD"):
                return self._method_not_allowed(wanted)
            job = self._job(parts[0])
            if job is not None:
                getattr(self, "_" + parts[1].replace("-", "_"))(job)
            return None
        return self._error(HTTPStatus.NOT_FOUND, codes.NOT_FOUND, f"No route {method} {urlsplit(self.path).path}.")

    def _read_body(self) -> bytes:
        """The request body, at most :data:`MAX_BODY_BYTES`; a ServiceAPIError when it cannot be read.

        Content-Length, or a chunked body read (capped) the way the production gateway reads it.
        A body that is refused before it was read to its end closes the connection.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Chunked wins over any Content-Length (RFC 9112 6.3); such a connection is not reused.
            if self.headers.get("Content-Length") is not None:
                self.close_connection = True
            raw = self._read_chunked()
            self._body_read = True
            return raw
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isdigit():  # also refuses "-1", "+5", "1e3" and "0x10"
            raise ServiceAPIError(codes.INPUT_BAD_CONTENT_LENGTH, "Content-Length is not a number.")
        length = int(declared)
        contract.check_body_size(length, input_max_bytes=MAX_INPUT_BYTES)
        raw = self.rfile.read(length)
        self._body_read = True
        if len(raw) < length:
            # The client claimed more than it sent (and ended its side): nothing more comes.
            self.close_connection = True
        return raw

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            hex_digits = bool(size_text) and len(size_text) <= 16 and set(size_text) <= _HEX_DIGITS
            size = int(size_text, 16) if hex_digits else -1
            if size < 0 or not line.endswith(b"\n"):
                self.close_connection = True
                raise ServiceAPIError(codes.INPUT_MALFORMED_JSON, "The chunked request body is malformed.")
            if size == 0:
                break
            if len(body) + size > MAX_BODY_BYTES:
                self.close_connection = True  # the rest stays unread
                contract.check_body_size(MAX_BODY_BYTES + 1, input_max_bytes=MAX_INPUT_BYTES, exact=False)
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3).strip():
                self.close_connection = True
                raise ServiceAPIError(codes.INPUT_MALFORMED_JSON, "The chunked request body is malformed.")
            body += chunk
        # Trailer fields, up to the empty line that ends the body.
        for _ in range(100):
            line = self.rfile.readline(8192)
            if not line.strip():
                break
        else:
            self.close_connection = True
        return bytes(body)

    def _submit(self) -> None:
        body = contract.parse_body(self._read_body())
        execution = contract.execution_input(body, max_bytes=MAX_INPUT_BYTES)
        refs = [ref for name, ref in (("data", "dataRef"), ("params", "paramsRef")) if execution[f"{name}_ref"]]
        if refs:
            return self._error(
                HTTPStatus.BAD_REQUEST,
                codes.DATAPOOL_NOT_AVAILABLE,
                f"{' and '.join(refs)} cannot be used with planqk serve: there are no data pools locally. "
                'Pass the input by value as "data" and "params".',
            )
        # The spec's data/params schemas, checked exactly as the platform's admission does.
        schema_check(self.server.input_schemas(), data=execution["data"], params=execution["params"])
        inputs = {name: execution[name] for name in ("data", "params") if execution[name] is not None}
        try:
            created = self.server.executor.submit(inputs)
        except RuntimeError:
            return self._error(HTTPStatus.SERVICE_UNAVAILABLE, codes.UNAVAILABLE, "planqk serve is stopping.")
        _log(f"job {created['id']} PENDING")
        return self._json(HTTPStatus.CREATED, created, {"Location": f"{self._base_url()}/{created['id']}"})

    def _submit_current(self) -> None:
        """``POST /`` of the current API: the body's top-level keys are the input, plus ``$secrets``
        and ``$tags``; checked as the platform's admission checks them."""
        body = contract.parse_body(self._read_body())
        data, secrets, tags = current_api.split_request(body)
        checked = contract.execution_input({"data": data}, max_bytes=MAX_INPUT_BYTES)["data"]
        try:
            secrets, tags = clean_secrets(secrets), clean_tags(tags)
        except ValueError as exc:
            raise ServiceAPIError(codes.INPUT_INVALID, str(exc), 422) from None
        check_body(self.server.body_schemas(), checked or {})
        try:
            created = self.server.executor.submit({"data": checked or {}}, secrets=secrets, tags=tags)
        except RuntimeError:
            return self._error(HTTPStatus.SERVICE_UNAVAILABLE, codes.UNAVAILABLE, "planqk serve is stopping.")
        _log(f"job {created['id']} PENDING")
        return self._json(HTTPStatus.CREATED, created, {"Location": f"{self._base_url()}/{created['id']}"})

    def _list(self) -> None:
        """``GET /`` of the current API: the executions, newest first, one page at a time."""
        query = parse_qs(urlsplit(self.path).query)
        page, size = current_api.page_request((query.get("page") or [None])[0], (query.get("size") or [None])[0])
        jobs = self.server.executor.listing()
        with self.server.executor.lock:
            executions = [job.to_json() for job in jobs[page * size : (page + 1) * size]]
        headers = current_api.page_headers(base_url=self._base_url(), page=page, size=size, total=len(jobs))
        return self._json(HTTPStatus.OK, executions, headers)

    def _token(self) -> None:
        """``POST /token``: the gateway's token endpoint, granting any credentials.

        There is no authentication locally; this only lets clients written for the gateway
        (client credentials, then ``Authorization: Bearer``) run unchanged against serve.
        """
        raw = self._read_body()
        form = parse_qs(raw.decode("utf-8", errors="replace"))
        if form.get("grant_type") != ["client_credentials"]:
            return self._json(
                HTTPStatus.BAD_REQUEST,
                {"error": "unsupported_grant_type", "error_description": "Use grant_type=client_credentials."},
            )
        token = {"access_token": f"local-{uuid.uuid4().hex}", "scope": "default", "token_type": "Bearer"}
        return self._json(HTTPStatus.OK, {**token, "expires_in": 3600})

    def _result(self, job: LocalJob) -> None:
        with self.server.executor.lock:
            status, response = job.status, job.response
            execution, names = job.to_json(), [item.name for item in job.files]
        if status not in FINAL_STATES or response is None:
            return self._fail(contract.not_finished(status))
        if not job.current:
            return self._json(HTTPStatus.OK, response)
        if status == SUCCEEDED:
            fields = current_api.result_fields(response.get("result"))
        else:
            fields = current_api.failure_fields(
                status=status, code=str(response.get("code") or ""), detail=str(response.get("detail") or "")
            )
        hal = current_api.hal_result(execution=execution, base_url=self._base_url(), fields=fields, files=names)
        return self._json(HTTPStatus.OK, hal)

    def _result_file(self, job: LocalJob, name: str) -> None:
        """``GET /{id}/result/{file}``: a result file by its (safe) name only, as a download."""
        with self.server.executor.lock:
            item = next((item for item in job.files if item.name == name), None)
        if item is None:
            return self._error(
                HTTPStatus.NOT_FOUND,
                "execution:result-file-not-found",
                "This execution has no result file of that name.",
            )
        with item.open() as fh:
            content = fh.read()
        headers = {
            "Content-Disposition": f'attachment; filename="{item.name}"',
            "X-Content-Type-Options": "nosniff",
        }
        return self._send(HTTPStatus.OK, content, item.media_type, headers)

    def _interim_results(self, job: LocalJob) -> None:
        with self.server.executor.lock:
            results = list(job.interim_results)
        self._json(HTTPStatus.OK, results)

    def _logs(self, job: LocalJob) -> None:
        with self.server.executor.lock:
            lines = list(job.logs)
        self._json(HTTPStatus.OK, lines)

    def _log(self, job: LocalJob) -> None:
        """``GET /{id}/log``: structured entries as the gateway answers them (204 while none)."""
        with self.server.executor.lock:
            lines = [(line + "\n", stamp) for line, stamp in zip(job.logs, job.log_times, strict=False)]
        entries = contract.current.log_entries(lines)
        if not entries:
            return self._send(HTTPStatus.NO_CONTENT, b"", "application/json")
        return self._json(HTTPStatus.OK, entries)

    def _cancel(self, job: LocalJob) -> None:
        self._json(HTTPStatus.OK, self.server.executor.cancel(job))

    # --- documentation --------------------------------------------------------------------------

    def _docs(self, rest: list[str]) -> None:
        swagger = self.server.swagger_dir
        if swagger is None:
            return self._error(
                HTTPStatus.NOT_FOUND,
                codes.NOT_INSTALLED,
                "Swagger UI is not installed: pip install drf-spectacular-sidecar.",
            )
        if not rest:
            page = _DOCS_PAGE.format(title=_html_escape(self.server.folder.name))
            return self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
        # Only plain file names of the Swagger UI folder: no path ever leaves it.
        if len(rest) == 2 and rest[0] == "static" and rest[1] in os.listdir(swagger):
            path = swagger / rest[1]
            kind = _STATIC_TYPES.get(path.suffix, "application/octet-stream")
            return self._send(HTTPStatus.OK, path.read_bytes(), kind)
        return self._error(HTTPStatus.NOT_FOUND, codes.NOT_FOUND, "No such file.")

    def _openapi(self) -> None:
        path = self.server.folder / "openapi-spec.yml"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return self._error(
                HTTPStatus.NOT_FOUND, codes.NOT_FOUND, f"There is no openapi-spec.yml in {self.server.folder}."
            )
        return self._send(
            HTTPStatus.OK, _local_spec(text, self._base_url()).encode(), "application/yaml; charset=utf-8"
        )


def _html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _local_spec(text: str, base_url: str) -> str:
    """The API spec with ``servers`` pointing at this server, so "Try it out" calls it.

    The file as it is when it cannot be read as a YAML mapping (Swagger UI then shows its error).
    """
    try:
        import yaml

        spec = yaml.safe_load(text)
    except Exception:
        return text
    if not isinstance(spec, dict):
        return text
    spec["servers"] = [{"url": base_url, "description": "planqk serve (local, no authentication)"}]
    return yaml.dump(spec, Dumper=_spec_dumper(), sort_keys=False, allow_unicode=True, width=100)


@functools.cache
def _spec_dumper() -> type:
    import yaml

    class SpecDumper(yaml.SafeDumper):
        """Multi-line strings as ``|`` blocks, so the served spec reads like the file."""

    def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    SpecDumper.add_representer(str, represent_str)
    return SpecDumper


def serve(args: argparse.Namespace) -> int:
    """Serve the service API on the code in the current folder until Ctrl-C."""
    folder = require_template(Path.cwd())
    if not 0 <= args.port <= 65535:
        raise CliError(f"{args.port} is not a port number", exit_code=ExitCode.USAGE)
    python = args.python or default_python()
    if args.concurrency < 1:
        raise CliError("--concurrency must be at least 1", exit_code=ExitCode.USAGE)
    try:
        generation = detect(folder)
    except GenerationError as exc:
        raise CliError(str(exc), exit_code=ExitCode.USAGE) from exc
    executor = Executor(folder, python=python, concurrency=args.concurrency, generation=generation.generation)
    try:
        server = ServiceAPIServer((args.host, args.port), executor, folder)
    except OSError as exc:
        executor.shutdown()
        raise CliError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            hint="Choose another port with -p PORT (-p 0 picks a free one).",
            exit_code=ExitCode.SERVE_FAILED,
        ) from exc
    host, port = server.server_address[:2]
    shown_host = f"[{host}]" if ":" in str(host) else host
    url = f"http://{shown_host}:{port}"
    # stdout, first line: scripts (and tests) read the address from it.
    print(f"Serving {folder} at {url}/", flush=True)
    term.info(f"Swagger UI: {url}/docs   API spec: {url}/openapi.yml   Stop with Ctrl-C.")
    term.info(term.style(f"Executions run with {python}", "2", stream=sys.stderr))
    api = "the current service API" if generation.generation == CURRENT else "the documented (2022) service API"
    term.info(term.style(f"Serving {api}: {generation.reason}", "2", stream=sys.stderr))
    if host not in ("127.0.0.1", "::1", "localhost"):
        term.warn(f"{host} is reachable from other machines and planqk serve has no authentication.")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT explicitly too: a shell starting us in the background sets it to "ignore".
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
        stopped = executor.shutdown()
        suffix = f"; stopped {stopped} running execution{'s' if stopped != 1 else ''}" if stopped else ""
        term.info(f"\nplanqk serve stopped{suffix}.")
    return ExitCode.OK
