"""The external runtime against providers that misbehave, and its forwarding safety.

The contract suite runs it against an honest provider (`planqk serve`); here the providers are
small real HTTP servers on loopback that lie, answer garbage, or must never be reached.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runtimes.base import ExecutionSpec
from runtimes.external import (
    ExternalBuildHandle,
    ExternalConfig,
    ExternalExecutionHandle,
    ExternalRuntime,
    ForwardError,
    check_url,
)

FORGED = 'Job:ResultResponse: {"result": {"forged": true}, "metadata": null}'


class Provider(ThreadingHTTPServer):
    """A provider whose answers a test scripts: ``status`` and a log that keeps growing."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ProviderHandler)
        self.status = "RUNNING"
        self.logs: list[str] = ["starting"]
        self.garbage = False
        self.refuse = False
        self.calls: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ProviderHandler(BaseHTTPRequestHandler):
    server: Provider

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any, *, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.server.calls.append(f"POST {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.server.refuse:
            return self._send(400, {"code": "input:invalid", "detail": "values must be numbers"})
        self._send(201, {"id": "provider-1", "status": "PENDING"})

    def do_PUT(self) -> None:
        self.server.calls.append(f"PUT {self.path}")
        self._send(200, {"id": "provider-1", "status": self.server.status})

    def do_GET(self) -> None:
        server = self.server
        server.calls.append(f"GET {self.path}")
        if server.garbage:
            return self._send(200, None, raw=b"<html>surprise</html>")
        if self.path == "/provider-1":
            return self._send(200, {"id": "provider-1", "status": server.status})
        if self.path == "/provider-1/logs":
            if server.status != "RUNNING":
                # Lines that arrive after the final state, forged ones among them.
                server.logs.append(FORGED)
            return self._send(200, list(server.logs))
        if self.path == "/provider-1/interim-results":
            return self._send(200, [{"step": 1}])
        if self.path == "/provider-1/result":
            return self._send(200, {"result": {"real": True}, "metadata": {"by": "provider"}})
        self._send(404, {"code": "not-found", "detail": self.path})


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _runtime(**options: Any) -> ExternalRuntime:
    data = Path(tempfile.mkdtemp(prefix="planqk-ext-"))
    return ExternalRuntime(ExternalConfig(data_dir=data, **options))


def _spec(url: str, **limits: Any) -> ExecutionSpec:
    values: dict[str, Any] = {
        "execution_id": f"t{uuid.uuid4().hex[:16]}",
        "build": ExternalBuildHandle(external_url=url),
        "data": {"values": [1, 2]},
        "params": {},
        "timeout_seconds": 60,
        "max_output_bytes": 1 << 20,
    }
    values.update(limits)
    return ExecutionSpec(**values)


def _output(runtime: ExternalRuntime, handle: Any) -> str:
    text, offset = "", 0
    while True:
        chunk, offset = runtime.read_output(handle, offset)
        if not chunk:
            return text
        text += chunk


def test_a_provider_cannot_forge_the_outcome_and_its_result_is_not_a_log_line(provider: Provider) -> None:
    runtime = _runtime(allow_private=True, sync_every_seconds=0)
    handle = runtime.start(_spec(provider.url))
    assert runtime.poll(handle).running is True
    provider.logs.append(FORGED)  # while it runs: just a log line
    assert runtime.poll(handle).running is True
    provider.status = "SUCCEEDED"
    state = runtime.poll(handle)
    assert state.running is False
    assert state.exit_code == 0
    before = _output(runtime, handle)
    # The provider keeps adding (forged) lines; asking again after the end appends nothing.
    runtime.poll(handle)
    runtime.read_output(handle, len(before.encode()))
    after = _output(runtime, handle)
    assert after == before
    lines = after.splitlines()
    assert lines[0] == "starting"
    assert 'PlanQK:Job:InterimResult: {"step": 1}' in lines
    assert FORGED in lines  # only a log line
    assert not any(line.startswith("Job:ResultResponse") and "real" in line for line in lines)
    assert runtime.final_response(handle).payload == {"result": {"real": True}, "metadata": {"by": "provider"}}
    runtime.cleanup(handle)


def test_a_provider_answering_garbage_ends_the_execution_without_an_exit_code(provider: Provider) -> None:
    runtime = _runtime(allow_private=True, sync_every_seconds=0, failure_limit=3, failure_seconds=0)
    handle = runtime.start(_spec(provider.url))
    provider.garbage = True
    states = [runtime.poll(handle) for _ in range(3)]
    assert [s.running for s in states] == [True, True, False]
    assert states[-1].exit_code is None
    final = runtime.final_response(handle)
    assert final is not None
    assert final.kind == "error"
    assert final.payload["code"] == "upstream:bad-gateway"


def test_a_provider_refusing_the_input_fails_the_execution_with_its_own_code(provider: Provider) -> None:
    provider.refuse = True
    runtime = _runtime(allow_private=True)
    handle = runtime.start(_spec(provider.url))
    state = runtime.poll(handle)
    assert state.running is False
    assert state.exit_code == 1
    final = runtime.final_response(handle)
    assert final is not None
    assert final.payload == {"code": "input:invalid", "detail": "values must be numbers"}


def test_the_timeout_cancels_at_the_provider(provider: Provider) -> None:
    runtime = _runtime(allow_private=True, sync_every_seconds=0)
    handle = runtime.start(_spec(provider.url, timeout_seconds=0))
    state = runtime.poll(handle)
    assert state.running is False
    assert state.timed_out is True
    assert "PUT /provider-1/cancel" in provider.calls


def test_the_handle_keeps_the_providers_id_and_comes_back_from_json(provider: Provider) -> None:
    runtime = _runtime(allow_private=True)
    handle = runtime.start(_spec(provider.url))
    stored = json.loads(json.dumps(handle.to_json()))
    assert stored["external_id"] == "provider-1"
    assert stored["base_url"] == provider.url
    assert runtime.execution_handle(stored) == handle
    assert isinstance(runtime.build_handle({"runtime": "external", "external_url": provider.url}), ExternalBuildHandle)
    with pytest.raises(ValueError, match="not a handle of the external runtime"):
        ExternalExecutionHandle.from_json({**stored, "runtime": "local"})
    runtime.cleanup(handle)


# --- forwarding safety ----------------------------------------------------------------------------

HOSTILE = [
    "http://127.0.0.1:{port}/",
    "http://127.0.0.1:{port}\\@1.1.1.1/",  # urlsplit saw 1.1.1.1, urllib3 connected to 127.0.0.1
    "http://user:pass@127.0.0.1:{port}/",
    "http://1.1.1.1@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}#@1.1.1.1/",
    "http://2130706433:{port}/",  # decimal
    "http://0x7f.1:{port}/",  # hex
    "http://0177.0.0.1:{port}/",  # octal
    "http://127.1:{port}/",
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://localhost:{port}/",
    "http://0.0.0.0:{port}/",
    "http://127.0.0.1:{port} /",
    "http://127.0.0.1:{port}/\t",
]


@pytest.fixture
def loopback_listeners() -> Iterator[tuple[int, list[socket.socket]]]:
    """One port listened on at 127.0.0.1 and, where the host has IPv6, at [::1]."""
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v4.bind(("127.0.0.1", 0))
    port = v4.getsockname()[1]
    listeners = [v4]
    try:
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind(("::1", port))
        listeners.append(v6)
    except OSError:
        pass
    for listener in listeners:
        listener.listen(16)
        listener.setblocking(False)
    yield port, listeners
    for listener in listeners:
        listener.close()


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_urls_never_reach_a_loopback_listener(
    template: str, loopback_listeners: tuple[int, list[socket.socket]]
) -> None:
    port, listeners = loopback_listeners
    url = template.format(port=port)
    runtime = _runtime()  # private addresses not allowed: the default
    handle = runtime.start(_spec(url))
    state = runtime.poll(handle)
    assert state.running is False
    final = runtime.final_response(handle)
    assert final is not None
    assert final.kind == "error"
    assert final.payload["code"] in ("upstream:private-address", "upstream:bad-url"), final.payload
    runtime.cancel(handle)
    runtime.cleanup(handle)
    for listener in listeners:
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected


def test_check_url_resolves_once_and_reports_the_addresses_it_checked() -> None:
    target = check_url("http://LOCALHOST:8000/base/", allow_private=True)
    assert target.host == "localhost"
    assert target.port == 8000
    assert target.path == "/base"
    assert "127.0.0.1" in target.addresses
    with pytest.raises(ForwardError) as refused:
        check_url("http://localhost:8000/", allow_private=False)
    assert refused.value.code == "upstream:private-address"
    for url in ("ftp://example.org/", "http:///nohost", "http://[::1/", "http://example.org:99999/"):
        with pytest.raises(ForwardError):
            check_url(url, allow_private=True)


def test_the_pinned_connection_keeps_the_host_header(provider: Provider) -> None:
    seen: list[str] = []

    class HostRecorder(ProviderHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Host", ""))
            self._send(200, {"status": "Service is up and running"})

    provider.RequestHandlerClass = HostRecorder
    runtime = _runtime(allow_private=True)
    port = provider.server_address[1]
    status, payload = runtime.http.call("GET", f"http://localhost:{port}", "/")
    assert status == 200
    assert payload == {"status": "Service is up and running"}
    assert seen == [f"localhost:{port}"]
