"""The portal's REST API (``/api/v1/``, see docs/DEVELOPING.md), as the CLI uses it.

Every failure becomes a :class:`~planqk_cli.errors.CliError` with the portal's own message
(``{"code", "detail"}``): unreachable, token rejected, refused, not found, or an answer that is
not our API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from planqk_cli import __version__
from planqk_cli.errors import AuthRejected, BadAnswer, FileProblem, NotFound, Refused, Unreachable

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# An upload is checked (and stored) before the portal answers: give it longer.
UPLOAD_READ_TIMEOUT = 600.0


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict):
        detail = payload.get("detail")
        code = payload.get("code")
        if detail is not None:
            return f"{detail} ({code})" if code and code not in ("error", "invalid") else str(detail)
    return json.dumps(payload)[:500]


class Portal:
    """A session against one portal, authenticated by a personal access token."""

    def __init__(self, endpoint: str, token: str | None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"planqk-cli/{__version__}"
        self.session.headers["Accept"] = "application/json"
        if token:
            # As session auth, not a plain header: requests would let a ~/.netrc entry replace it.
            self.session.auth = _Bearer(token)

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``services/``."""
        return urljoin(self.endpoint + "/api/v1/", path.lstrip("/"))

    # --- transport ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        read_timeout: float = READ_TIMEOUT,
        not_found: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Send a request and return the decoded JSON answer; CliError for every failure.

        ``not_found`` is the message for a 404 (the default names the URL).
        """
        url = path if path.startswith(("http://", "https://")) else self.url(path)
        try:
            response = self.session.request(method, url, timeout=(CONNECT_TIMEOUT, read_timeout), **kwargs)
        except requests.exceptions.SSLError as exc:
            raise Unreachable(f"TLS failed talking to {self.endpoint}: {exc}") from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise Unreachable(
                f"cannot reach the portal at {self.endpoint} ({_reason(exc)})",
                hint="Is it running? Choose another portal with --endpoint URL or PLANQK_ENDPOINT.",
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise Unreachable(f"request to {url} failed: {exc}") from exc
        return self._decode(response, not_found=not_found)

    def _decode(self, response: requests.Response, *, not_found: str | None) -> Any:
        payload: Any = None
        is_json = "json" in response.headers.get("Content-Type", "")
        if is_json:
            try:
                payload = response.json()
            except ValueError:
                is_json = False
        status = response.status_code
        if status == 401:
            detail = _error_text(payload) if is_json else "authentication required"
            raise AuthRejected(
                f"the portal rejected your token: {detail}",
                hint="It has expired, was revoked or is wrong. Create a new personal access token in the "
                f"portal ({self.endpoint}/settings/tokens/) and run `planqk login -t TOKEN`.",
            )
        if status == 404 and (is_json or not_found):
            raise NotFound(not_found or f"not found: {response.url} ({_error_text(payload)})")
        if 400 <= status < 500 and is_json:
            raise Refused(f"the portal refused the request: {_error_text(payload)}")
        if status >= 400:
            what = _error_text(payload) if is_json else f"HTTP {status}"
            raise BadAnswer(
                f"the portal answered {response.request.method} {response.url} with {what}",
                hint="Check the portal's logs, or that --endpoint points at a PlanQK portal.",
            )
        if not is_json:
            raise BadAnswer(
                f"{response.url} did not answer with JSON (HTTP {status}, {response.headers.get('Content-Type')})",
                hint="Is the endpoint a PlanQK portal? Choose it with --endpoint URL or PLANQK_ENDPOINT.",
            )
        return payload

    # --- helpers --------------------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def iterate(self, path: str, params: dict[str, Any] | None = None, *, limit: int | None = None) -> Iterator[Any]:
        """Items of a list endpoint, plain or paginated (``{"results", "next"}``), up to ``limit``."""
        url: str | None = path
        count = 0
        while url:
            page = self.get(url, params=params)
            params = None  # a "next" link carries the query already
            if isinstance(page, list):
                items, url = page, None
            elif isinstance(page, dict) and isinstance(page.get("results"), list):
                items, url = page["results"], page.get("next")
            else:
                raise BadAnswer(f"{self.url(path)} did not answer with a list")
            for item in items:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield item

    # --- the calls of the CLI ---------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """``GET me``: who the token belongs to."""
        try:
            me = self.get("me")
        except NotFound as exc:
            raise BadAnswer(
                f"{self.endpoint} has no PlanQK API ({self.url('me')} answered 404)",
                hint="Is the endpoint a PlanQK portal? Choose it with --endpoint URL or PLANQK_ENDPOINT.",
            ) from exc
        if not isinstance(me, dict) or "email" not in me:
            raise BadAnswer(f"{self.url('me')} did not answer like a PlanQK portal")
        return me

    def create_service(self, fields: dict[str, str], *, archive: Path, api_spec: Path | None) -> dict[str, Any]:
        """``POST services/`` with the zip and the optional API spec (multipart)."""
        with _files(archive, api_spec) as files:
            return _require_object(
                self.post("services/", data=fields, files=files, read_timeout=UPLOAD_READ_TIMEOUT), "service"
            )

    def create_version(self, service_id: str, *, archive: Path, api_spec: Path | None) -> dict[str, Any]:
        """``POST services/{id}/versions/``: a new version of an existing service."""
        with _files(archive, api_spec) as files:
            return _require_object(
                self.post(
                    f"services/{service_id}/versions/",
                    files=files,
                    read_timeout=UPLOAD_READ_TIMEOUT,
                    not_found=f"service {service_id} does not exist on {self.endpoint} (or is not yours)",
                ),
                "version",
            )

    def service(self, service_id: str) -> dict[str, Any]:
        return _require_object(
            self.get(f"services/{service_id}/", not_found=f"service {service_id} not found on {self.endpoint}"),
            "service",
        )

    def find_service(self, name: str) -> dict[str, Any] | None:
        """One of the user's services by its name, or None."""
        for item in self.iterate("services/", {"name": name}):
            if isinstance(item, dict) and item.get("name") == name:
                return item
        return None

    def version(self, service_id: str, version_id: str) -> dict[str, Any]:
        return _require_object(self.get(f"services/{service_id}/versions/{version_id}/"), "version")

    def build_logs(self, service_id: str, version_id: str, after: int) -> dict[str, Any]:
        return _require_object(
            self.get(f"services/{service_id}/versions/{version_id}/logs", params={"after": after}), "log"
        )

    def submit_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return _require_object(self.post("jobs/", json=body), "job")

    def job_logs(self, job_id: str, after: int) -> dict[str, Any]:
        return _require_object(self.get(f"jobs/{job_id}/logs", params={"after": after}), "log")

    def job(self, job_id: str) -> dict[str, Any]:
        return _require_object(self.get(f"jobs/{job_id}/", not_found=f"job {job_id} not found"), "job")


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class _files:
    """Open the multipart files and close them again, whatever happens."""

    def __init__(self, archive: Path, api_spec: Path | None) -> None:
        self.paths = {"file": archive, "api_spec": api_spec}
        self.handles: list[Any] = []

    def __enter__(self) -> dict[str, tuple[str, Any, str]]:
        files: dict[str, tuple[str, Any, str]] = {}
        for field, path in self.paths.items():
            if path is None:
                continue
            try:
                handle = open(path, "rb")
            except OSError as exc:
                self.__exit__()
                raise FileProblem(f"cannot read {path}: {exc.strerror}") from exc
            self.handles.append(handle)
            kind = "application/zip" if field == "file" else "application/yaml"
            files[field] = (path.name, handle, kind)
        return files

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.close()
        self.handles.clear()


def _require_object(payload: Any, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise BadAnswer(f"the portal answered with something that is not a {what} object")
    return payload


def _reason(exc: Exception) -> str:
    # requests nests urllib3's reason several levels deep; the innermost says what happened.
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    return text[:200]
