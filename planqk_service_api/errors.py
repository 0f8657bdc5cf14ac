"""The one exception of the contract: an error answer, ``{"code", "detail", **extra}``."""

from __future__ import annotations

from typing import Any


class ServiceAPIError(Exception):
    """An error answer of the service API: ``code`` (see :mod:`planqk_service_api.codes`),
    ``detail`` for people, the HTTP ``status`` and ``extra`` keys of the body."""

    def __init__(self, code: str, detail: str, status: int = 400, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer: ``extra`` first, ``code`` and ``detail`` always win."""
        return {**self.extra, "code": self.code, "detail": self.detail}

    def __repr__(self) -> str:
        return f"ServiceAPIError({self.code!r}, {self.detail!r}, status={self.status})"
