"""Services imported from a URL: the provider runs them, this runtime plays the runner.

The provider's service speaks the service API (ARCHITECTURE section 3) at the version's
``external_url``. ``start`` POSTs the input (already resolved by value); the handle keeps the
base URL, the provider's execution id (never shown to callers) and when it started.

The engine reads an execution's output as an append-only text stream of logs. So this runtime
keeps a spool per execution (``{DATA_DIR}/external/<execution_id>/output.log``) and appends to
it what the provider says: new log lines (``GET /{id}/logs``) and new interim results (``GET
/{id}/interim-results``) as ``PlanQK:Job:InterimResult:`` lines. The outcome never goes into
the spool: once the provider's state is final, the response made from ``GET /{id}/result``
(or the platform's own error) is recorded in the spool's state, and :meth:`final_response`
answers from there only, so no provider log line, whatever it says, can be taken as the result.

Forwarding is hostile by default: see :class:`SafeHTTP`.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import urllib3
from urllib3.util import parse_url

from planqk_runtime.channel import response_from_json
from planqk_runtime.protocol import (
    ERROR_PREFIX,
    INTERIM_PREFIX,
    KIND_ERROR,
    KIND_RESULT,
    RESULT_PREFIX,
    FinalResponse,
)
from runtimes._common import decode_prefix, rmtree
from runtimes.base import (
    BuildError,
    BuildHandle,
    BuildResult,
    BuildSpec,
    CancelFunc,
    ExecutionHandle,
    ExecutionSpec,
    ExecutionState,
    LogFunc,
    Runtime,
    _never,
    check_id,
)

#: (connect, read) seconds for every call to a provider's service.
TIMEOUT = (5.0, 30.0)
#: Answers larger than this are refused (a result passed by value is at most a few MB).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024
OUTPUT_FILE = "output.log"
STATE_FILE = "state.json"
HANDLE_FILE = "handle.json"
LOCK_FILE = "lock"
RUNNING_STATES = ("PENDING", "RUNNING")
FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN")


class ForwardError(Exception):
    """The provider cannot be (or may not be) reached, or answered nonsense."""

    def __init__(self, detail: str, *, code: str = "upstream:bad-gateway") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


@dataclass(frozen=True)
class ExternalConfig:
    """Where spools live and whether private addresses may be reached (``PLANQK_EXTERNAL_ALLOW_PRIVATE``)."""

    data_dir: Path
    allow_private: bool = False
    timeout: tuple[float, float] = TIMEOUT
    max_response_bytes: int = MAX_RESPONSE_BYTES
    #: How often a running execution is asked about (poll and read_output share the answer).
    sync_every_seconds: float = 0.3
    #: A provider that fails this many times in a row, for at least ``failure_seconds``, is given up.
    failure_limit: int = 10
    failure_seconds: float = 30.0


@dataclass(frozen=True)
class ExternalBuildHandle(BuildHandle):
    """A URL-imported version: nothing is built, the provider's base URL is the build."""

    external_url: str
    version_id: str = ""
    runtime: str = "external"


@dataclass(frozen=True)
class ExternalExecutionHandle(ExecutionHandle):
    """One execution at the provider: its base URL and its id there (never shown to callers)."""

    execution_id: str
    base_url: str
    external_id: str = ""
    started_at: float | None = None
    timeout: int = 0
    max_output_bytes: int = 0
    runtime: str = "external"


# --- forwarding safety --------------------------------------------------------------------------


#: IPv6 prefixes whose low 32 bits are an IPv4 address a translator or the host may route to,
#: which Python's ``is_global`` still calls public: NAT64's well-known prefix (RFC 6052) and the
#: deprecated IPv4-compatible addresses.
_EMBEDDING_IPV4 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))
#: RFC 8215's local-use NAT64 prefix: an operator's own translator, refused whatever it embeds.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` is not a public unicast address (also through IPv6 embeddings)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return True
        low32 = next(
            (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) for net in _EMBEDDING_IPV4 if address in net), None
        )
        for embedded in (address.ipv4_mapped, address.sixtofour, (address.teredo or (None, None))[1], low32):
            if embedded is not None and _refused(embedded):
                return True
    return not address.is_global or address.is_multicast or address.is_unspecified


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the resolved addresses) and what to ask for."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    path: str


def check_url(url: str, *, allow_private: bool) -> Target:
    """Parse ``url`` as the HTTP client does, resolve its host once and check every address.

    URLs on which parsers are known to disagree are refused outright (backslashes, userinfo,
    whitespace and control characters), and the host must come out the same from urllib3
    (the client's parser) and ``urllib.parse``. Without ``allow_private`` every address the
    name resolves to must be public: loopback, private, link-local, reserved, multicast and
    unspecified addresses are refused, also when spelled in decimal, octal or hex or embedded
    in IPv6. The caller connects to these addresses only, so a second DNS answer cannot differ.
    """
    if not isinstance(url, str) or not url:
        raise ForwardError("The service has no URL.", code="upstream:bad-url")
    if any(ch in url for ch in "\\@") or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ForwardError(
            "The service's URL contains characters the platform does not forward to (\\, @, spaces).",
            code="upstream:bad-url",
        )
    try:
        parsed = parse_url(url)
        split = urlsplit(url)
        split_port = split.port
    except (ValueError, urllib3.exceptions.LocationParseError):
        raise ForwardError("The service's URL cannot be parsed.", code="upstream:bad-url") from None
    scheme = (parsed.scheme or "").lower()
    if scheme not in ("http", "https") or not parsed.host:
        raise ForwardError("The service's URL must be http:// or https:// with a host.", code="upstream:bad-url")
    host = parsed.host.strip("[]").lower()
    if parsed.auth or host != (split.hostname or "").lower() or parsed.port != split_port:
        raise ForwardError("The service's URL is ambiguous.", code="upstream:bad-url")
    port = parsed.port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        raise ForwardError(
            f"The service's host name {host!r} cannot be resolved.", code="upstream:unreachable"
        ) from None
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(text)
        if not allow_private and _refused(address):
            raise ForwardError(
                f"The service's host {host!r} is on a private or local network ({address}); the platform only "
                "forwards to public addresses (an operator can allow this with PLANQK_EXTERNAL_ALLOW_PRIVATE).",
                code="upstream:private-address",
            )
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise ForwardError(f"The service's host name {host!r} has no address.", code="upstream:unreachable")
    return Target(scheme, host, port, tuple(addresses), (parsed.path or "").rstrip("/"))


class SafeHTTP:
    """HTTP to providers: checked addresses only, no redirects, no proxies, bounded answers.

    Each call connects to an address :func:`check_url` resolved and checked, never to the name
    again, with the original ``Host`` header and (for https) the original name for SNI and the
    certificate check.
    """

    def __init__(self, config: ExternalConfig) -> None:
        self.config = config

    def call(self, method: str, base_url: str, suffix: str = "/", *, body: Any = None) -> tuple[int, Any]:
        """``(status, parsed JSON or None)`` of one call to ``base_url`` + ``suffix``."""
        target = check_url(base_url, allow_private=self.config.allow_private)
        headers = {"Accept": "application/json", "User-Agent": "planqk-platform"}
        default_port = 443 if target.scheme == "https" else 80
        host_header = f"[{target.host}]" if ":" in target.host else target.host
        headers["Host"] = host_header if target.port == default_port else f"{host_header}:{target.port}"
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        timeout = urllib3.Timeout(connect=self.config.timeout[0], read=self.config.timeout[1])
        last: Exception | None = None
        for address in target.addresses:
            if target.scheme == "https":
                pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                    address, target.port, server_hostname=target.host, assert_hostname=target.host, timeout=timeout
                )
            else:
                pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout)
            try:
                response = pool.urlopen(
                    method,
                    (target.path + suffix) or "/",
                    body=data,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    assert_same_host=False,
                )
            except urllib3.exceptions.NewConnectionError as exc:
                last = exc
                pool.close()
                continue  # the next address of the name
            except urllib3.exceptions.TimeoutError:
                pool.close()
                raise ForwardError("The service did not answer in time.", code="upstream:timeout") from None
            except urllib3.exceptions.HTTPError as exc:
                pool.close()
                raise ForwardError(
                    f"The service cannot be reached ({type(exc).__name__}).", code="upstream:unreachable"
                ) from None
            try:
                return response.status, self._json(response)
            finally:
                response.release_conn()
                pool.close()
        raise ForwardError(
            f"The service cannot be reached ({type(last).__name__}).", code="upstream:unreachable"
        ) from None

    def _json(self, response: Any) -> Any:
        cap = self.config.max_response_bytes
        try:
            content = response.read(cap + 1, decode_content=True)
        except Exception:
            raise ForwardError("The service's answer could not be read.") from None
        if len(content) > cap:
            raise ForwardError("The service's answer is too large.")
        if not content.strip():
            return None
        try:
            return json.loads(content)
        except (ValueError, RecursionError):
            raise ForwardError(
                f"The service answered HTTP {response.status} with something that is not JSON."
            ) from None


def parse_time(value: Any) -> datetime | None:
    """A provider's timestamp (the contract's ``YYYY-MM-DD HH:MM:SS`` UTC, or ISO 8601)."""
    if not isinstance(value, str) or not value:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            parsed = datetime.strptime(value.replace("Z", "+0000"), fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


# --- the runtime ----------------------------------------------------------------------------------


def _line(prefix: str, payload: Any) -> str:
    return f"{prefix} {json.dumps(payload, separators=(', ', ': '))}\n"


class ExternalRuntime(Runtime):
    """Forwards executions to the provider's service and spools what it answers."""

    name: ClassVar[str] = "external"
    build_handle_class = ExternalBuildHandle
    execution_handle_class = ExternalExecutionHandle

    def __init__(self, config: ExternalConfig) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir).resolve()
        self.http = SafeHTTP(config)

    @property
    def spools_dir(self) -> Path:
        return self.data_dir / "external"

    def describe(self) -> dict[str, str]:
        return {
            "runtime": self.name,
            "isolation": "the provider's own machines",
            "addresses": "private addresses allowed" if self.config.allow_private else "public addresses only",
        }

    # --- builds --------------------------------------------------------------------------------

    def build(self, spec: BuildSpec, *, log: LogFunc, should_cancel: CancelFunc = _never) -> BuildResult:
        """Nothing to build: check that the URL may be forwarded to and that the service answers."""
        url = spec.external_url.rstrip("/")
        try:
            status, _payload = self.http.call("GET", url, "/")
        except ForwardError as exc:
            raise BuildError(exc.detail, user_error=True, code=f"build:user:{exc.code.split(':')[-1]}") from None
        log(f"GET {url}/ answered HTTP {status}")
        if status >= 500:
            raise BuildError(f"the service answered HTTP {status}", user_error=True, code="build:user:unreachable")
        return BuildResult(ExternalBuildHandle(external_url=url, version_id=spec.version_id))

    def remove_build(self, build_handle: BuildHandle | Mapping[str, Any]) -> None:
        """Nothing was built."""

    # --- executions ----------------------------------------------------------------------------

    def _dir(self, execution_id: str) -> Path:
        return self.spools_dir / check_id(execution_id, "execution id")

    @staticmethod
    def _own(handle: ExecutionHandle) -> ExternalExecutionHandle:
        if not isinstance(handle, ExternalExecutionHandle):
            raise TypeError(f"not an execution handle of the external runtime: {handle!r}")
        return handle

    def start(self, spec: ExecutionSpec) -> ExternalExecutionHandle:
        """POST the input; a refusal or an unreachable provider is a failed execution, not an exception."""
        build = spec.build
        if not isinstance(build, ExternalBuildHandle):
            raise ValueError(f"not a build of the external runtime: {build!r}")
        folder = self._dir(spec.execution_id)
        if folder.exists():
            with contextlib.suppress(OSError, ValueError):
                self.cleanup(self.execution_handle(json.loads((folder / HANDLE_FILE).read_text())))
            rmtree(folder)
        folder.mkdir(parents=True)
        (folder / OUTPUT_FILE).touch()
        base = build.external_url.rstrip("/")
        handle = ExternalExecutionHandle(
            execution_id=spec.execution_id,
            base_url=base,
            started_at=time.time(),
            timeout=int(spec.timeout_seconds),
            max_output_bytes=int(spec.max_output_bytes),
        )
        error: dict[str, str] | None = None
        try:
            status, payload = self.http.call("POST", base, "/", body={"data": spec.data, "params": spec.params})
        except ForwardError as exc:
            error = {"code": exc.code, "detail": exc.detail}
        else:
            if status in (200, 201, 202) and isinstance(payload, dict) and payload.get("id"):
                handle = ExternalExecutionHandle(**{**handle.to_json(), "external_id": str(payload["id"])[:200]})
            elif 400 <= status < 500 and isinstance(payload, dict):
                # The provider refused the input: pass its own explanation on.
                error = {
                    "code": str(payload.get("code") or "upstream:refused")[:100],
                    "detail": str(payload.get("detail") or f"The service refused the input (HTTP {status})."),
                }
            else:
                error = {"code": "upstream:bad-gateway", "detail": f"The service answered HTTP {status} to the start."}
        _write_json(folder / HANDLE_FILE, handle.to_json())
        state: dict[str, Any] = {"logs": 0, "interims": 0, "final": None, "failures": 0, "first_failure": None}
        if error is not None:
            state["final"] = {"status": "FAILED", "exit_code": 1, "response": {"kind": KIND_ERROR, "payload": error}}
        _write_json(folder / STATE_FILE, state)
        return handle

    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[dict[str, Any] | None]:
        """The spool's state under its lock (another worker may follow it too); None when gone."""
        try:
            fh = open(folder / LOCK_FILE, "a+")  # noqa: SIM115 - closed below
        except OSError:
            yield None
            return
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                state = json.loads((folder / STATE_FILE).read_text())
            except (OSError, ValueError):
                yield None
                return
            yield state
            with contextlib.suppress(OSError):
                _write_json(folder / STATE_FILE, state)

    def _append(self, folder: Path, handle: ExternalExecutionHandle, text: str) -> bool:
        """Append to the spool within the output cap; False (nothing written) when it would not fit."""
        data = text.encode()
        path = folder / OUTPUT_FILE
        size = path.stat().st_size if path.exists() else 0
        if handle.max_output_bytes and size + len(data) > handle.max_output_bytes:
            return False
        with open(path, "ab") as fh:
            fh.write(data)
        return True

    def _sync(self, handle: ExternalExecutionHandle, *, force: bool = False) -> dict[str, Any] | None:
        """Ask the provider what is new and spool it; returns the final outcome once there is one."""
        folder = self._dir(handle.execution_id)
        with self._locked(folder) as state:
            if state is None:
                return {"status": "GONE", "exit_code": None}
            if state["final"] is not None:
                return state["final"]
            now = time.time()
            if not force and now - float(state.get("synced_at") or 0) < self.config.sync_every_seconds:
                return None
            state["synced_at"] = now
            try:
                status = self._provider_status(handle)
                self._spool_new(folder, handle, state)
            except ForwardError as exc:
                return self._failure(folder, handle, state, exc.code, exc.detail)
            state["failures"], state["first_failure"] = 0, None
            if state.get("truncated"):
                if status in RUNNING_STATES:
                    with contextlib.suppress(ForwardError):
                        self.http.call("PUT", handle.base_url, f"/{handle.external_id}/cancel")
                error = {
                    "code": "job:output-too-large",
                    "detail": "The service's output is larger than the platform keeps.",
                }
                return self._final(folder, handle, state, "TRUNCATED", None, error)
            if status in RUNNING_STATES:
                if handle.started_at and now > handle.started_at + handle.timeout:
                    with contextlib.suppress(ForwardError):
                        self.http.call("PUT", handle.base_url, f"/{handle.external_id}/cancel")
                    detail = f"The execution took longer than its timeout of {handle.timeout} seconds."
                    error = {"code": "job:timeout", "detail": detail}
                    return self._final(folder, handle, state, "TIMEOUT", None, error)
                return None
            return self._final_from_provider(folder, handle, state, status)

    def _provider_status(self, handle: ExternalExecutionHandle) -> str:
        code, payload = self.http.call("GET", handle.base_url, f"/{handle.external_id}")
        if code != 200 or not isinstance(payload, dict):
            raise ForwardError(f"The service answered HTTP {code} about the execution.")
        status = payload.get("status")
        if status not in RUNNING_STATES + FINAL_STATES:
            raise ForwardError(f"The service reported an execution status the API does not know: {status!r}.")
        return str(status)

    def _spool_new(self, folder: Path, handle: ExternalExecutionHandle, state: dict[str, Any]) -> None:
        for suffix, key, prefix in (("logs", "logs", None), ("interim-results", "interims", INTERIM_PREFIX)):
            code, items = self.http.call("GET", handle.base_url, f"/{handle.external_id}/{suffix}")
            if code != 200 or not isinstance(items, list):
                continue  # the execution still runs; its logs are not what decides it
            for item in items[int(state[key]) :]:
                if prefix is None:
                    text = (item if isinstance(item, str) else json.dumps(item)).replace("\r", "")
                    text = "".join(f"{part}\n" for part in text.split("\n"))
                else:
                    text = _line(prefix, item)
                if not self._append(folder, handle, text):
                    state["truncated"] = True
                    return
                state[key] = int(state[key]) + 1

    def _final_from_provider(
        self, folder: Path, handle: ExternalExecutionHandle, state: dict[str, Any], status: str
    ) -> dict[str, Any]:
        if status == "CANCELLED":
            detail = "The service cancelled the execution."
            return self._final(folder, handle, state, "CANCELLED", None, {"code": "job:cancelled", "detail": detail})
        if status == "UNKNOWN":
            detail = "The service does not know how the execution ended."
            return self._final(folder, handle, state, "UNKNOWN", None, {"code": "upstream:unknown", "detail": detail})
        try:
            code, payload = self.http.call("GET", handle.base_url, f"/{handle.external_id}/result")
        except ForwardError as exc:
            code, payload = 0, {"code": exc.code, "detail": exc.detail}
        if status == "SUCCEEDED" and code == 200 and isinstance(payload, dict) and "result" in payload:
            response = {"result": payload.get("result"), "metadata": payload.get("metadata")}
            return self._final(folder, handle, state, "SUCCEEDED", 0, response, prefix=RESULT_PREFIX)
        if status == "FAILED" and isinstance(payload, dict) and payload.get("code"):
            error = {"code": str(payload["code"])[:100], "detail": str(payload.get("detail") or "")}
        else:
            detail = f"The service reported {status} but no usable {'result' if status == 'SUCCEEDED' else 'error'}."
            error = {"code": "upstream:no-result", "detail": detail}
        return self._final(folder, handle, state, status, 0 if status == "SUCCEEDED" else 1, error)

    def _failure(
        self, folder: Path, handle: ExternalExecutionHandle, state: dict[str, Any], code: str, detail: str
    ) -> dict[str, Any] | None:
        """Count a bad answer; a provider that keeps answering garbage ends the execution (exit code unknown)."""
        now = time.time()
        state["failures"] = int(state.get("failures") or 0) + 1
        state["first_failure"] = state.get("first_failure") or now
        lasting = now - float(state["first_failure"]) >= self.config.failure_seconds
        if state["failures"] >= self.config.failure_limit and lasting:
            with contextlib.suppress(ForwardError):
                self.http.call("PUT", handle.base_url, f"/{handle.external_id}/cancel")
            return self._final(folder, handle, state, "LOST", None, {"code": code, "detail": detail})
        return None

    def _final(
        self,
        folder: Path,
        handle: ExternalExecutionHandle,
        state: dict[str, Any],
        status: str,
        exit_code: int | None,
        response: dict[str, Any],
        *,
        prefix: str = ERROR_PREFIX,
    ) -> dict[str, Any]:
        """Record the outcome and the response in the spool's state (never in the spool itself)."""
        kind = KIND_RESULT if prefix == RESULT_PREFIX else KIND_ERROR
        state["final"] = {"status": status, "exit_code": exit_code, "response": {"kind": kind, "payload": response}}
        return state["final"]

    def final_response(self, handle: ExecutionHandle) -> FinalResponse | None:
        """The response recorded when the provider's execution ended (see the module docstring)."""
        folder = self._dir(self._own(handle).execution_id)
        with self._locked(folder) as state:
            final = (state or {}).get("final") or {}
            return response_from_json(final.get("response"))

    def poll(self, handle: ExecutionHandle) -> ExecutionState:
        handle = self._own(handle)
        final = self._sync(handle)
        if final is None:
            return ExecutionState(running=True)
        status = final["status"]
        return ExecutionState(
            running=False,
            exit_code=final.get("exit_code"),
            timed_out=status == "TIMEOUT",
            output_truncated=status == "TRUNCATED",
            cancelled=status == "CANCELLED",
        )

    def read_output(self, handle: ExecutionHandle, offset: int) -> tuple[str, int]:
        handle = self._own(handle)
        path = self._dir(handle.execution_id) / OUTPUT_FILE
        with contextlib.suppress(OSError):
            if offset >= path.stat().st_size:
                self._sync(handle)  # everything spooled was read: ask the provider for more
        limit = (handle.max_output_bytes or (1 << 62)) - offset
        if limit <= 0:
            return "", offset
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(min(limit, READ_CHUNK_BYTES))
        except OSError:
            return "", offset
        return decode_prefix(data, offset)

    def cancel(self, handle: ExecutionHandle) -> None:
        """PUT cancel at the provider and wait a few seconds for it to end; then it is cancelled here."""
        handle = self._own(handle)
        if self._sync(handle, force=True) is not None:
            return
        with contextlib.suppress(ForwardError):
            self.http.call("PUT", handle.base_url, f"/{handle.external_id}/cancel")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self._sync(handle, force=True) is not None:
                return
            time.sleep(0.2)
        folder = self._dir(handle.execution_id)
        with self._locked(folder) as state:
            if state is not None and state["final"] is None:
                detail = "Cancelled; the service did not confirm it."
                self._final(folder, handle, state, "CANCELLED", None, {"code": "job:cancelled", "detail": detail})

    def cleanup(self, handle: ExecutionHandle) -> None:
        handle = self._own(handle)
        folder = self._dir(handle.execution_id)
        with self._locked(folder) as state:
            running = state is not None and state["final"] is None
        if running and handle.external_id:
            with contextlib.suppress(ForwardError):
                self.http.call("PUT", handle.base_url, f"/{handle.external_id}/cancel")
        rmtree(folder)

    def orphans(self, known_execution_ids: set[str]) -> list[ExecutionHandle]:
        found: list[ExecutionHandle] = []
        if not self.spools_dir.exists():
            return found
        for entry in sorted(self.spools_dir.iterdir()):
            if not entry.is_dir() or entry.name in known_execution_ids:
                continue
            try:
                found.append(self.execution_handle(json.loads((entry / HANDLE_FILE).read_text())))
            except (OSError, ValueError):
                found.append(ExternalExecutionHandle(execution_id=entry.name, base_url=""))
        return found

    def kill_orphan(self, handle: ExecutionHandle) -> None:
        self.cleanup(handle)


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)
