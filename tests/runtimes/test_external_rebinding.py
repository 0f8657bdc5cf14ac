"""DNS rebinding against forwarding to URL-imported services (runtimes/external.py).

A hostile provider's name answers a public address while the platform checks it and 127.0.0.1
a moment later, when the connection is made. The platform must resolve the name once (the
check) and connect to the address it checked: then the second answer never matters.

The resolver is the process's own ``socket.getaddrinfo``, which both the check and urllib3's
connection call, replaced for this test: the hostile name answers the public address the first
time and 127.0.0.1 afterwards. A real loopback listener records whether anything connected. So
that no packet leaves this machine, the public address itself does not resolve (urllib3 looks up
the literal it connects to): a call that connects where the check said fails with a clear
"cannot be reached" error and the listener got nothing; one that resolved the name again would
reach the listener.
"""

from __future__ import annotations

import ipaddress
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtimes.base import ExecutionSpec
from runtimes.external import ExternalBuildHandle, ExternalConfig, ExternalRuntime, ForwardError, SafeHTTP

NAME = "rebinding.example"
#: A public unicast address: what the hostile name answers the check (never connected to here).
PUBLIC = "93.184.215.14"
#: Short, so that a regression (a connection to the listener, which never answers) fails fast.
TIMEOUT = (2.0, 2.0)


class RebindingResolver:
    """``socket.getaddrinfo`` for the process: ``NAME`` answers ``PUBLIC`` once, then 127.0.0.1."""

    def __init__(self, real: Callable[..., Any], answers: list[list[str]]) -> None:
        self.real = real
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        host = host.decode() if isinstance(host, bytes) else str(host)
        self.asked.append(host)
        if host == NAME:
            # The first answer to the check, then the rebound one for every later question.
            addresses = self.answers[min(self.asked.count(NAME), len(self.answers)) - 1]
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))
                for address in addresses
            ]
        if host == PUBLIC:
            raise socket.gaierror(socket.EAI_NONAME, "the public address is not contacted in this test")
        return self.real(host, port, *args, **kwargs)


@pytest.fixture
def listener() -> Iterator[tuple[int, socket.socket]]:
    """A real listener on 127.0.0.1 that nobody should reach (never accepted: it only queues)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    yield sock.getsockname()[1], sock
    sock.close()


def _rebinding(monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> RebindingResolver:
    resolver = RebindingResolver(socket.getaddrinfo, list(answers) or [[PUBLIC], ["127.0.0.1"]])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return resolver


def _nobody_connected(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        sock.accept()


def test_the_public_address_is_public() -> None:
    # The test means something only while the check lets this address through.
    assert ipaddress.ip_address(PUBLIC).is_global


def test_a_call_connects_to_the_checked_address_not_to_a_second_answer(
    monkeypatch: pytest.MonkeyPatch, listener: tuple[int, socket.socket]
) -> None:
    port, sock = listener
    resolver = _rebinding(monkeypatch)
    http = SafeHTTP(ExternalConfig(data_dir=Path(tempfile.gettempdir()), timeout=TIMEOUT))
    with pytest.raises(ForwardError) as refused:
        http.call("POST", f"http://{NAME}:{port}/", "/", body={"data": {"secret": 42}})
    _nobody_connected(sock)
    assert refused.value.code == "upstream:unreachable"
    assert "cannot be reached" in refused.value.detail
    # The name was asked once (the check); the connection asked for the checked address.
    assert resolver.asked.count(NAME) == 1
    assert PUBLIC in resolver.asked[resolver.asked.index(NAME) :]


def test_an_execution_started_on_a_rebinding_name_fails_without_reaching_loopback(
    monkeypatch: pytest.MonkeyPatch, listener: tuple[int, socket.socket], tmp_path: Path
) -> None:
    port, sock = listener
    resolver = _rebinding(monkeypatch)
    runtime = ExternalRuntime(ExternalConfig(data_dir=tmp_path, timeout=TIMEOUT, failure_limit=1, failure_seconds=0))
    spec = ExecutionSpec(
        execution_id=f"t{uuid.uuid4().hex[:16]}",
        build=ExternalBuildHandle(external_url=f"http://{NAME}:{port}/"),
        data={"values": [1, 2]},
        params={},
        timeout_seconds=30,
    )
    handle = runtime.start(spec)
    try:
        assert runtime.poll(handle).running is False
        _nobody_connected(sock)
        final = runtime.final_response(handle)
        assert final is not None
        assert final.kind == "error"
        assert final.payload["code"] == "upstream:unreachable", final.payload
    finally:
        runtime.cleanup(handle)
    assert resolver.asked.count(NAME) == 1


def test_an_answer_mixing_a_public_and_a_loopback_address_is_refused_before_any_connection(
    monkeypatch: pytest.MonkeyPatch, listener: tuple[int, socket.socket]
) -> None:
    port, sock = listener
    resolver = _rebinding(monkeypatch, [PUBLIC, "127.0.0.1"])
    http = SafeHTTP(ExternalConfig(data_dir=Path(tempfile.gettempdir()), timeout=TIMEOUT))
    with pytest.raises(ForwardError) as refused:
        http.call("GET", f"http://{NAME}:{port}/", "/")
    assert refused.value.code == "upstream:private-address"
    _nobody_connected(sock)
    assert PUBLIC not in resolver.asked  # nothing was connected to, not even the public address
