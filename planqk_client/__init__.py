"""A Python client for services on the platform (the service API of ARCHITECTURE section 3).

Only ``requests`` is needed. Copy the service endpoint from your application's subscription and
the consumer key and secret from the application::

    from planqk_client import PlanqkServiceClient

    client = PlanqkServiceClient(
        "https://portal.example.org/gateway/<context id>/sum/1.0.0/",
        consumer_key="...",
        consumer_secret="...",
    )
    execution = client.start_execution(data={"values": [100, 50, 200, 70, 0.69]}, params={"round_off": False})
    final = client.wait_for_final_state(execution["id"], timeout=600)
    if final["status"] == "SUCCEEDED":
        print(client.get_result(execution["id"])["result"])   # {'sum': 420.69}
    else:
        print(client.get_result(execution["id"]))             # {'code': ..., 'detail': ...}
        print("\\n".join(client.get_logs(execution["id"])))

The access token is fetched from the token endpoint (by default ``<gateway>/token``, derived
from the service endpoint) and refreshed shortly before it expires, or at once when the gateway
rejects it. Data pool files are passed with ``data_ref=``/``params_ref=`` as
``{"dataPoolId": ..., "dataSourceDescriptorId": ..., "fileId": ...}``.

Errors are exceptions: :class:`AuthenticationError` (wrong key or secret, token refused),
:class:`RateLimitError` (429, with ``retry_after``), :class:`ExecutionNotFinishedError` (a result
asked for too early), :class:`ExecutionTimeoutError` (``wait_for_final_state`` ran out of time)
and :class:`ServiceError` for any other error answer; all derive from :class:`PlanqkClientError`
and carry the gateway's ``status``, ``code`` and ``detail``.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

__all__ = [
    "FINAL_STATES",
    "AuthenticationError",
    "ExecutionNotFinishedError",
    "ExecutionTimeoutError",
    "PlanqkClientError",
    "PlanqkServiceClient",
    "RateLimitError",
    "ServiceError",
]

FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"})
#: Only these mean "keep waiting"; any other status (also one a newer platform adds) is final.
_ACTIVE_STATES = frozenset({"PENDING", "RUNNING"})
#: Refresh the token this many seconds before it expires, so no call races its expiry.
_REFRESH_MARGIN = 60


class PlanqkClientError(Exception):
    """Any failure talking to the service; ``status``/``code``/``detail`` as the gateway gave them."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail


class AuthenticationError(PlanqkClientError):
    """The token endpoint refused the consumer key and secret, or the gateway refused the token."""


class ServiceError(PlanqkClientError):
    """The gateway answered with an error (403 not subscribed, 404, 413 input too large...)."""


class RateLimitError(ServiceError):
    """429: the subscription's plan allows no more requests or executions right now."""

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ExecutionNotFinishedError(ServiceError):
    """409: the result was asked for before the execution reached a final state."""


class ExecutionTimeoutError(PlanqkClientError, TimeoutError):
    """``wait_for_final_state`` gave up; ``last_status`` is the last job object seen."""

    def __init__(self, message: str, *, last_status: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.last_status = last_status


def _token_endpoint_for(service_endpoint: str) -> str:
    # {GATEWAY_URL}/{context_id}/{service_name}/{version}/ → {GATEWAY_URL}/token
    parts = urlsplit(service_endpoint)
    segments = [segment for segment in parts.path.split("/") if segment]
    if len(segments) < 3:
        raise ValueError(
            f"{service_endpoint!r} does not look like a service endpoint "
            "({GATEWAY_URL}/{context_id}/{service_name}/{version}/): pass token_endpoint= explicitly."
        )
    gateway_path = "/".join(segments[:-3])
    return urlunsplit((parts.scheme, parts.netloc, f"/{gateway_path}/token" if gateway_path else "/token", "", ""))


def _error_fields(response: requests.Response) -> tuple[str | None, Any]:
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:500] or None
    if isinstance(body, dict):
        code = body.get("code") or body.get("error")
        detail = body.get("detail") or body.get("error_description")
        return (str(code) if code is not None else None), detail
    return None, body


class PlanqkServiceClient:
    """Calls one service version through the gateway with an application's client credentials."""

    def __init__(
        self,
        service_endpoint: str,
        consumer_key: str,
        consumer_secret: str,
        token_endpoint: str | None = None,
        *,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        if not service_endpoint or not consumer_key or not consumer_secret:
            raise ValueError("service_endpoint, consumer_key and consumer_secret are all required")
        self.service_endpoint = service_endpoint.rstrip("/") + "/"
        self.token_endpoint = token_endpoint or _token_endpoint_for(self.service_endpoint)
        self.timeout = timeout
        self._credentials = (consumer_key, consumer_secret)
        self._session = session or requests.Session()
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._lock = threading.Lock()

    # --- the token --------------------------------------------------------------------------

    def _fetch_token(self) -> str:
        try:
            response = self._session.post(
                self.token_endpoint,
                data={"grant_type": "client_credentials"},
                auth=self._credentials,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise PlanqkClientError(f"cannot reach the token endpoint {self.token_endpoint}: {exc}") from exc
        if response.status_code != 200:
            code, detail = _error_fields(response)
            raise AuthenticationError(
                f"the token endpoint refused the credentials (HTTP {response.status_code}: {code}"
                + (f" - {detail})" if detail else ")"),
                status=response.status_code,
                code=code,
                detail=detail,
            )
        try:
            body = response.json()
            token = body["access_token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PlanqkClientError("the token endpoint answered without an access_token") from exc
        expires_in = body.get("expires_in") or 3600
        self._token = token
        self._token_expires_at = time.monotonic() + max(float(expires_in) - _REFRESH_MARGIN, 1.0)
        return token

    def access_token(self, *, refresh: bool = False) -> str:
        """A valid access token: the cached one, or a new one shortly before it expires."""
        with self._lock:
            if refresh or self._token is None or time.monotonic() >= self._token_expires_at:
                return self._fetch_token()
            return self._token

    # --- calls ------------------------------------------------------------------------------

    def _url(self, suffix: str) -> str:
        return self.service_endpoint + suffix

    def _call(self, method: str, suffix: str, *, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        response = self._send(method, suffix, json=json, headers=headers, token=self.access_token())
        if response.status_code == 401:
            # Expired or revoked since we fetched it: one fresh token, one more try.
            response = self._send(method, suffix, json=json, headers=headers, token=self.access_token(refresh=True))
        return self._answer(response)

    def _send(self, method: str, suffix: str, *, json: Any, headers: dict[str, str] | None, token: str) -> Any:
        try:
            return self._session.request(
                method,
                self._url(suffix),
                json=json,
                headers={"Accept": "application/json", "Authorization": f"Bearer {token}", **(headers or {})},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise PlanqkClientError(f"cannot reach the service at {self._url(suffix)}: {exc}") from exc

    @staticmethod
    def _answer(response: requests.Response) -> Any:
        if response.status_code < 400:
            try:
                return response.json()
            except ValueError as exc:
                raise ServiceError(
                    f"the service answered HTTP {response.status_code} with something that is not JSON",
                    status=response.status_code,
                ) from exc
        code, detail = _error_fields(response)
        message = f"HTTP {response.status_code}" + (f" {code}" if code else "") + (f": {detail}" if detail else "")
        fields = {"status": response.status_code, "code": code, "detail": detail}
        if response.status_code == 401:
            raise AuthenticationError(message, **fields)
        if response.status_code == 429:
            try:
                retry_after = float(response.headers.get("Retry-After", "1"))
            except ValueError:
                retry_after = 1.0
            raise RateLimitError(message, retry_after=retry_after, **fields)
        if response.status_code == 409:
            raise ExecutionNotFinishedError(message, **fields)
        raise ServiceError(message, **fields)

    # --- the service API --------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /``: ``{"status": "Service is up and running"}``."""
        return self._call("GET", "")

    def start_execution(
        self,
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        data_ref: dict[str, str] | None = None,
        params_ref: dict[str, str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Start an execution; returns the job object (``id``, ``status``, ``createdAt``...).

        With ``idempotency_key`` a repeated call (e.g. after a network error) returns the same
        execution instead of starting a second one.
        """
        if data is not None and data_ref is not None:
            raise ValueError("pass data or data_ref, not both")
        if params is not None and params_ref is not None:
            raise ValueError("pass params or params_ref, not both")
        body: dict[str, Any] = {}
        for key, value in (("data", data), ("dataRef", data_ref), ("params", params), ("paramsRef", params_ref)):
            if value is not None:
                body[key] = value
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._call("POST", "", json=body, headers=headers)

    def get_status(self, execution_id: str) -> dict[str, Any]:
        """``GET /{id}``: the job object."""
        return self._call("GET", str(execution_id))

    def wait_for_final_state(
        self,
        execution_id: str,
        timeout: float | None = None,
        *,
        initial_interval: float = 0.5,
        max_interval: float = 10.0,
    ) -> dict[str, Any]:
        """Poll with exponential backoff until the execution is final; returns the last job object.

        Any status other than PENDING and RUNNING counts as final. A 429 waits as long as the
        gateway asks. ``timeout`` (seconds, None for no limit) raises :class:`ExecutionTimeoutError`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = initial_interval
        last: dict[str, Any] | None = None
        while True:
            try:
                last = self.get_status(execution_id)
                if last.get("status") not in _ACTIVE_STATES:
                    return last
                pause = interval
                interval = min(interval * 2, max_interval)
            except RateLimitError as exc:
                pause = exc.retry_after
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ExecutionTimeoutError(
                        f"execution {execution_id} did not finish within {timeout} s "
                        f"(last status {(last or {}).get('status')})",
                        last_status=last,
                    )
                pause = min(pause, remaining)
            time.sleep(pause)

    def get_result(self, execution_id: str) -> dict[str, Any]:
        """``GET /{id}/result``: ``{"result", "metadata"}`` after success, ``{"code", "detail"}`` after failure.

        Raises :class:`ExecutionNotFinishedError` while the execution is still running.
        """
        return self._call("GET", f"{execution_id}/result")

    def get_interim_results(self, execution_id: str) -> list[Any]:
        """``GET /{id}/interim-results``: what the execution published so far."""
        return self._call("GET", f"{execution_id}/interim-results")

    def get_logs(self, execution_id: str) -> list[str]:
        """``GET /{id}/logs``: the execution's log lines."""
        return self._call("GET", f"{execution_id}/logs")

    def cancel_execution(self, execution_id: str) -> dict[str, Any]:
        """``PUT /{id}/cancel``: the job object (CANCELLED once it has stopped)."""
        return self._call("PUT", f"{execution_id}/cancel")
