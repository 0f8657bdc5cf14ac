"""The service API contract (ARCHITECTURE.md section 3), once, in the standard library only.

Both implementations of the service API use it: the platform's gateway
(``applications.gateway``, through the Django adapter ``applications/gateway/jsonio.py``) and
``planqk serve`` (``planqk_cli/serve.py``). What a client sees is decided here: the status names,
the job object and its timestamps, the error codes, and every check of a request body.

The current API (Kipu Quantum Hub's, for versions of the current generation) is
:mod:`planqk_service_api.current`, beside the documented one and changing nothing of it.

Nothing here imports Django or anything outside the standard library, so ``planqk serve`` (and
any other server of the contract) can use it as it is.
"""

from __future__ import annotations

from . import codes, current
from .errors import ServiceAPIError
from .inputs import (
    DEFAULT_INPUT_MAX_BYTES,
    MAX_DEPTH,
    REF_KEYS,
    body_max_bytes,
    check_body_size,
    check_document,
    encoded_size,
    execution_input,
    json_problem,
    parse_body,
)
from .jobs import (
    CANCELLED,
    FAILED,
    FINAL_STATES,
    PENDING,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    TIMESTAMP_FORMAT,
    UNKNOWN,
    job_object,
    not_finished,
    timestamp,
)

__all__ = [
    "CANCELLED",
    "DEFAULT_INPUT_MAX_BYTES",
    "FAILED",
    "FINAL_STATES",
    "MAX_DEPTH",
    "PENDING",
    "REF_KEYS",
    "RUNNING",
    "STATUSES",
    "SUCCEEDED",
    "TIMESTAMP_FORMAT",
    "UNKNOWN",
    "ServiceAPIError",
    "body_max_bytes",
    "check_body_size",
    "check_document",
    "codes",
    "current",
    "encoded_size",
    "execution_input",
    "job_object",
    "json_problem",
    "not_finished",
    "parse_body",
    "timestamp",
]
