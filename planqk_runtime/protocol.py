"""The stdout protocol between the runner and the platform, as pure functions.

The runner (``python -m planqk_runtime``) ends every execution with exactly one line on stdout:

- ``Job:ResultResponse: {"result": ..., "metadata": ...}`` (exit code 0), or
- ``Job:ErrorResponse: {"code": ..., "detail": ...}`` (non-zero exit code, see :class:`ExitCode`).

User code may print ``PlanQK:Job:InterimResult: <json>`` lines while it runs; everything else is
log output. User code can print anything, including a fake ``Job:ResultResponse:`` line, and
its child processes can print after the runner has finished. So the platform never reads the
outcome from stdout: it gives the runner a result channel of its own
(:mod:`planqk_runtime.channel`), on which the runner writes the same line. :func:`final_response`
is for a runner run by hand (no channel): there only the last non-blank line counts.

This module has no dependencies beyond the standard library so the platform (runtimes, gateway,
CLI) and the runner share one definition of the protocol.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

RESULT_PREFIX = "Job:ResultResponse:"
ERROR_PREFIX = "Job:ErrorResponse:"
INTERIM_PREFIX = "PlanQK:Job:InterimResult:"

KIND_RESULT = "result"
KIND_ERROR = "error"
KIND_INTERIM = "interim"
KIND_LOG = "log"


class ExitCode(enum.IntEnum):
    """Exit codes of ``python -m planqk_runtime``."""

    #: ``run`` returned a result; the final line is ``Job:ResultResponse:``.
    SUCCESS = 0
    #: ``run`` returned an ErrorResponse of its own; the final line is ``Job:ErrorResponse:``.
    USER_ERROR = 1
    #: The runner detected a failure (bad input, import error, missing entry point, exception
    #: in ``run``, unserialisable result); the final line is ``Job:ErrorResponse:``.
    RUNNER_ERROR = 2
    #: A bug in the runner itself (should never happen); the final line is ``Job:ErrorResponse:``
    #: with code ``INTERNAL_ERROR`` when it could still be written.
    INTERNAL_ERROR = 3


class ErrorCode:
    """The ``code`` values the runner itself puts in an ErrorResponse.

    Plain strings (not an enum) so they compare and serialise as-is on every Python >= 3.10.
    User code chooses its own codes for the ErrorResponses it returns.
    """

    INVALID_INPUT = "INVALID_INPUT"
    IMPORT_ERROR = "IMPORT_ERROR"
    ENTRY_POINT_NOT_FOUND = "ENTRY_POINT_NOT_FOUND"
    EXECUTION_ERROR = "EXECUTION_ERROR"
    RESULT_NOT_SERIALIZABLE = "RESULT_NOT_SERIALIZABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


@dataclass(frozen=True)
class FinalResponse:
    """The outcome of an execution, read from the runner's final stdout line.

    ``payload`` is ``{"result": ..., "metadata": ...}`` when ``kind`` is ``"result"`` and
    ``{"code": str, "detail": str}`` when ``kind`` is ``"error"``: exactly what
    ``GET /{id}/result`` returns.
    """

    kind: str
    payload: dict[str, Any]

    @property
    def succeeded(self) -> bool:
        """True for a ResultResponse."""
        return self.kind == KIND_RESULT


def _strip_eol(line: str) -> str:
    # Docker with a TTY turns "\n" into "\r\n"; neither is part of the payload.
    return line.rstrip("\r\n")


def _parse_json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def _is_result_payload(payload: Any) -> bool:
    return isinstance(payload, dict) and "result" in payload


def _is_error_payload(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("code"), str)
        and isinstance(payload.get("detail", ""), str)
    )


def parse_output_line(line: str) -> tuple[str, Any]:
    """Classify one stdout line.

    Returns ``("result", {"result", "metadata"})``, ``("error", {"code", "detail"})``,
    ``("interim", <any JSON value>)`` or ``("log", line)``. A marker followed by text that is
    not JSON of the right shape is a plain log line: it cannot be trusted as an outcome.
    """
    text = _strip_eol(line)
    for prefix, kind in (
        (INTERIM_PREFIX, KIND_INTERIM),
        (RESULT_PREFIX, KIND_RESULT),
        (ERROR_PREFIX, KIND_ERROR),
    ):
        if not text.startswith(prefix):
            continue
        ok, payload = _parse_json(text[len(prefix) :])
        if not ok:
            return KIND_LOG, text
        if kind == KIND_RESULT:
            if not _is_result_payload(payload):
                return KIND_LOG, text
            return kind, {"result": payload["result"], "metadata": payload.get("metadata")}
        if kind == KIND_ERROR:
            if not _is_error_payload(payload):
                return KIND_LOG, text
            return kind, {"code": payload["code"], "detail": payload.get("detail", "")}
        return kind, payload
    return KIND_LOG, text


def final_response(last_stdout_lines: str | Iterable[str]) -> FinalResponse | None:
    """The outcome of an execution from the end of its stdout, or ``None`` if there is none.

    Accepts the tail of stdout as one string or as lines. Only the LAST non-blank line is
    considered: a ``Job:ResultResponse:`` printed earlier by user code is ignored because the
    runner always prints its own line after all user output. ``None`` means the process died
    before the runner could answer (killed, out of memory, timeout): the caller decides the
    error, e.g. with :func:`error_payload`.
    """
    lines = last_stdout_lines.splitlines() if isinstance(last_stdout_lines, str) else last_stdout_lines
    last = None
    for line in lines:
        if _strip_eol(line).strip():
            last = line
    if last is None:
        return None
    kind, payload = parse_output_line(last)
    if kind not in (KIND_RESULT, KIND_ERROR):
        return None
    return FinalResponse(kind=kind, payload=payload)


def error_payload(code: str, detail: str) -> dict[str, str]:
    """An ErrorResponse payload, for the platform's own failures (timeouts, cancellation...)."""
    return {"code": str(code), "detail": str(detail)}


def format_result_line(payload: dict[str, Any]) -> str:
    """The runner's final line for a result payload (strict JSON, no newline)."""
    return RESULT_PREFIX + " " + json.dumps(payload, allow_nan=False)


def format_error_line(payload: dict[str, Any]) -> str:
    """The runner's final line for an error payload (no newline)."""
    return ERROR_PREFIX + " " + json.dumps(payload, allow_nan=False)


def format_interim_line(value: Any) -> str:
    """An interim result line (no newline)."""
    return INTERIM_PREFIX + " " + json.dumps(value, allow_nan=False)
