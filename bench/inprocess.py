"""The in-process baseline: the user's ``run()`` called in a thread of a minimal HTTP server.

This is how PlanQK's local service API runs a service: the server imports ``src.program`` once
at start-up, ``POST /`` starts ``run(data=..., params=...)`` in a thread and answers with an id,
``GET /<id>`` tells its status (and its result once it has one). No isolation, no persistence,
no limits: the floor a platform that isolates and records every execution is compared with.

``python bench/inprocess.py SOURCE_DIR`` (standard library only, so the service's own
environment runs it: ``<env>/bin/python bench/inprocess.py <build dir>``) prints ``PORT <n>``
once it listens on 127.0.0.1. :func:`measure` drives it over HTTP on loopback: submission to
final state as the server records them (the time of the POST, the time ``run()`` returned), so
the client's polling does not count, as the jobs benchmark reads ``created_at``/``ended_at``;
and as the client sees it (its POST to the GET that reads the final state, polling every 0.2 ms).
"""

from __future__ import annotations

import http.client
import importlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FINAL = ("SUCCEEDED", "FAILED")


def _plain(value: Any) -> Any:
    """The response objects of the template (``ResultResponse``...) as JSON values."""
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return getattr(value, "__dict__", str(value))


def make_server(run: Callable[..., Any], port: int = 0) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:``port`` that runs ``run`` in a thread per POST."""
    executions: dict[str, dict[str, Any]] = {}
    # Threads that live as long as the server: Qiskit Aer (OpenMP) crashes when run() is called
    # in a second short-lived thread after the first one ended (a segfault in this benchmark).
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="run")

    def work(execution_id: str, data: Any, params: Any) -> None:
        record = executions[execution_id]
        try:
            record["result"] = json.loads(json.dumps(run(data=data, params=params), default=_plain))
            record["status"] = "SUCCEEDED"
        except Exception as exc:  # the user's code failed: the execution did, not the server
            record["status"], record["error"] = "FAILED", f"{type(exc).__name__}: {exc}"
        record["ended"] = time.monotonic()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a client of the real API would use
        # Headers and body are two writes: without TCP_NODELAY the body waits for the client's
        # delayed ACK (~40 ms on loopback), which is no cost of running run() in a thread.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            created = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._answer(400, {"error": "the body is not JSON"})
                return
            execution_id = uuid.uuid4().hex
            executions[execution_id] = {"status": "RUNNING", "created": created}
            pool.submit(work, execution_id, body.get("data"), body.get("params"))
            self._answer(201, {"id": execution_id, "status": "RUNNING"})

        def do_GET(self) -> None:
            record = executions.get(self.path.strip("/"))
            if record is None:
                self._answer(404, {"error": "no such execution"})
                return
            body = {key: value for key, value in record.items() if key in ("status", "result", "error")}
            if "ended" in record:
                body["seconds"] = record["ended"] - record["created"]
            self._answer(200, body)

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def serve(source_dir: Path) -> None:
    """Import the user's program once (its heavy imports too), then serve until killed."""
    # Run as a script, this folder is first on the path: its modules must not shadow the user's.
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    sys.path.insert(0, str(source_dir))
    program = importlib.import_module("src.program")
    server = make_server(program.run)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


# --- the client: the benchmark's side ---------------------------------------------------------


def start(python: str, source_dir: Path) -> tuple[subprocess.Popen[str], int]:
    """Start the server with ``python`` (the service's environment) in ``source_dir``; its port."""
    proc = subprocess.Popen(
        [python, str(Path(__file__).resolve()), str(source_dir)],
        cwd=source_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"the in-process server did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, int(line.split()[1])


def one(conn: http.client.HTTPConnection, data: Any, params: Any, timeout: float = 120) -> tuple[float, float]:
    """Milliseconds from submission to final state of one execution: as the server recorded them
    (its POST to the end of ``run()``), and as the client saw them (its POST to the GET that said so)."""
    sent = time.monotonic()
    body = json.dumps({"data": data, "params": params}).encode()  # bytes: sent with the headers, in one write
    conn.request("POST", "/", body, {"Content-Type": "application/json"})
    execution_id = json.loads(conn.getresponse().read())["id"]
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        conn.request("GET", f"/{execution_id}")
        body = json.loads(conn.getresponse().read())
        if body["status"] in FINAL:
            seen = time.monotonic()
            if body["status"] != "SUCCEEDED":
                raise RuntimeError(f"the in-process execution failed: {body.get('error')}")
            return float(body["seconds"]) * 1000, (seen - sent) * 1000
        time.sleep(0.0002)
    raise RuntimeError(f"the in-process execution did not end in {timeout} s")


def measure(python: str, source_dir: Path, data: Any, params: Any, *, runs: int) -> tuple[list[float], list[float]]:
    """Milliseconds of ``runs`` executions one after the other (after one to warm up): as the
    server recorded them, and as the client saw them (:func:`one`)."""
    proc, port = start(python, source_dir)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        times = [one(conn, data, params) for _ in range(runs + 1)][1:]
        conn.close()
        return [server for server, _ in times], [client for _, client in times]
    finally:
        proc.kill()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench inprocess SOURCE_DIR``: serve the user code in ``SOURCE_DIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0], "src").is_dir():
        print("usage: python bench/inprocess.py SOURCE_DIR   (the folder holding src/program.py)")
        return 2
    serve(Path(args[0]).resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
