"""The PlanQK runner: executes user code under the runtime contract (ARCHITECTURE.md section 2).

Standard library only; runs on any Python >= 3.10. Start it with the user code folder (the one
holding ``src/``) as the current working directory::

    python -m planqk_runtime

Entry point
    ``ENTRY_POINT`` (``module:function``), default ``src.program:run``. The current working
    directory is put first on ``sys.path`` so ``src`` is importable. The function is called as
    ``run(data=..., params=...)`` with keyword arguments.

Input (the first that exists wins, separately for data and for params)
    1. ``{INPUT_DIR}/data/data.json`` and ``{INPUT_DIR}/params/params.json``;
    2. ``{INPUT_DIR}/data.json`` and ``{INPUT_DIR}/params.json``;
    3. the environment variables ``DATA_VALUE`` and ``PARAMS_VALUE``: base64-encoded JSON, or
       plain JSON when ``BASE64_ENCODED`` is ``false`` (case-insensitive; ``0`` and ``no`` too).
    ``INPUT_DIR`` defaults to ``/var/input`` (our extension: the platform's local runtime points
    it elsewhere). Only regular files count (``docker run -v`` of a missing host file mounts an
    empty directory). A missing input, an empty file or an empty variable is ``{}``.

Output
    Anything user code prints is log output, except lines ``PlanQK:Job:InterimResult: <json>``,
    which are interim results (:func:`interim_result` prints one; user code can also just print
    the line and need not import this package). After ``run`` returns, the runner flushes user
    output, points stdout at stderr so stray threads and child processes cannot write to the
    result channel any more, writes exactly one final line and leaves with ``os._exit``:

    - ``Job:ResultResponse: {"result": ..., "metadata": ...}`` and exit code 0;
    - ``Job:ErrorResponse: {"code": ..., "detail": ...}`` and exit code 1 when ``run`` returned
      an ErrorResponse, 2 when the runner detected the failure, 3 for a bug in the runner.

    The final line is strict, ASCII-only JSON (no NaN or Infinity). Run by hand, that last line
    is the answer (:func:`planqk_runtime.protocol.final_response`). The platform and ``planqk
    serve`` start the runner with a result channel of its own (``PLANQK_RESULT_FD``, see
    :mod:`planqk_runtime.channel`) and take the answer from there only: the runner writes the
    same line on it once ``run`` has returned, and output printed later, by anyone, is a log.

Return values of ``run`` (duck-typed; the user's classes are never imported)
    - an object with a ``result`` attribute (the template's ``ResultResponse``): a result with
      its ``result`` and ``metadata`` (``None`` when absent);
    - an object with ``code`` and ``detail`` attributes (the template's ``ErrorResponse``): an
      error, exit code 1;
    - for both, the object's own ``to_json()`` is used when it has one (it may serialise nested
      objects its own way), else its attributes;
    - any other value (dict, list, number, string, ``None``) is the result itself:
      ``{"result": value, "metadata": null}``.
    numpy scalars and arrays (anything with ``tolist()``) are converted; any other value JSON
    cannot represent gives ``RESULT_NOT_SERIALIZABLE``.

Error codes of the runner (each with a ``detail`` saying what failed; tracebacks go to stderr)
    ``INVALID_INPUT`` (malformed JSON, bad base64), ``IMPORT_ERROR`` (importing the user code
    raised), ``ENTRY_POINT_NOT_FOUND`` (no such module or function), ``EXECUTION_ERROR`` (``run``
    raised; the detail names the exception type and message), ``RESULT_NOT_SERIALIZABLE``,
    ``INTERNAL_ERROR``.

The current generation (``PLANQK_GENERATION=current``; :mod:`planqk_runtime.generation`)
    Kipu Quantum Hub's ``qhub-serve`` / ``qhub-commons`` convention. The input is one JSON
    object (read as ``data`` above: the request without its ``$`` keys); ``run()``'s parameters
    are bound from its top-level keys by name and converted to their annotations (pydantic
    models via ``model_validate``, simple types, containers...; :func:`planqk_runtime.runner.
    bind_arguments`); a missing or misfitting one is ``INVALID_INPUT`` naming it. ``SecretValue``
    parameters come from ``SECRET_<NAME>`` (:mod:`planqk_runtime.secrets`). The return value is
    the result as it is (``{"result": <value>, "metadata": null}`` on the channel; a pydantic
    model by ``model_dump(mode="json")``). Files the program writes into ``OUTPUT_DIRECTORY``
    are taken by the platform after it ended (:mod:`planqk_runtime.outputs`), in both generations.

Logging
    ``LOG_LEVEL`` (``DEBUG``, ``INFO``... or a number; default ``INFO``) sets the root logger's
    level; log records go to stderr.
"""

from __future__ import annotations

import sys
from typing import Any

from planqk_runtime.protocol import ErrorCode, ExitCode, format_interim_line

__all__ = ["ErrorCode", "ExitCode", "interim_result"]


def interim_result(value: Any) -> None:
    """Publish an interim result (any JSON value) while ``run`` is still working."""
    # One write of the whole line plus a flush, so the platform sees it at once and never as a
    # half line interleaved with other output.
    sys.stdout.write(format_interim_line(value) + "\n")
    sys.stdout.flush()
