"""What `run` returns: a ResultResponse on success or an ErrorResponse on failure.

The platform sends `{"result": ..., "metadata": ...}` or `{"code": ..., "detail": ...}` to the
caller of `GET /{id}/result`.
"""

from __future__ import annotations

import json
from typing import Any


class Response:
    """Base of both responses: serialises its attributes (and nested objects) to JSON."""

    def to_json(self) -> str:
        """The response as a JSON string."""
        return json.dumps(self, default=lambda o: o.__dict__, sort_keys=True)


class ResultResponse(Response):
    """A successful result, with optional metadata (e.g. backend, shots, timings)."""

    def __init__(self, result: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.result = result
        self.metadata = metadata


class ErrorResponse(Response):
    """A failure: a stable `code` the caller can test for and a `detail` for humans."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__()
        self.code = code
        self.detail = detail
