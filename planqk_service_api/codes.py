"""Every ``code`` the service API answers with, by name.

An error answer is ``{"code": ..., "detail": ...}`` (sometimes with more keys, e.g. ``status`` on
a 409 or ``method`` on a 405). The spelling is the gateway's; ``planqk serve`` uses the same
names, so a client handles one set of codes whichever server it talks to.
"""

from __future__ import annotations

# --- the request: routes and methods ---------------------------------------------------------

#: 404: no endpoint at this path (not an execution that does not exist: see EXECUTION_NOT_FOUND).
NOT_FOUND = "not_found"
#: 405, with an ``Allow`` header and ``"method"`` in the body.
METHOD_NOT_ALLOWED = "method-not-allowed"
#: 500: the server failed on this request.
SERVER_ERROR = "server-error"

# --- the request body (POST /) ----------------------------------------------------------------

#: 411: a body without Content-Length that the server cannot read.
INPUT_LENGTH_REQUIRED = "input:length-required"
#: 400: a Content-Length header that is not a number.
INPUT_BAD_CONTENT_LENGTH = "input:bad-content-length"
#: 413: the body, or ``data`` / ``params`` by value, larger than the limit.
INPUT_TOO_LARGE = "input:too-large"
#: 400: not UTF-8, not JSON, or JSON with NaN / Infinity.
INPUT_MALFORMED_JSON = "input:malformed-json"
#: 400: the body, ``data`` or ``params`` is not a JSON object.
INPUT_NOT_AN_OBJECT = "input:not-an-object"
#: 400: nested deeper than the limit (100 levels).
INPUT_TOO_DEEP = "input:too-deep"
#: 400: a NUL character or an unpaired surrogate in a string (PostgreSQL's jsonb refuses both).
INPUT_INVALID_CHARACTERS = "input:invalid-characters"
#: 400: a value JSON cannot represent (a number out of range, such as 1e999, read as infinity).
INPUT_NOT_JSON = "input:not-json"
#: 400: both ``data`` and ``dataRef`` (or ``params`` and ``paramsRef``).
INPUT_BOTH_VALUE_AND_REF = "input:both-value-and-ref"
#: 422: the input does not match the ``data``/``params`` schemas of the service's API spec; the
#: body's ``errors`` lists every problem as ``{"path": "data.values[2]", "message": ...}``.
INPUT_INVALID = "input:invalid"
#: 400: an ``Idempotency-Key`` header that is empty, too long or not printable.
INPUT_BAD_IDEMPOTENCY_KEY = "input:bad-idempotency-key"
#: 409: an ``Idempotency-Key`` already used for another service or version.
INPUT_IDEMPOTENCY_KEY_REUSED = "input:idempotency-key-reused"
#: 400: a data pool reference given to a service that cannot take one (imported from a URL).
INPUT_REF_NOT_SUPPORTED = "input:ref-not-supported"

# --- the current API's listing (GET / in pages) -------------------------------------------------

#: 400: ``GET /?page=&size=`` with a page or size that is not a whole number in range.
INPUT_BAD_PAGE = "input:bad-page"

# --- data pool references ---------------------------------------------------------------------

#: 400: ``dataRef`` / ``paramsRef`` is not an object with the three string ids.
DATAPOOL_BAD_REFERENCE = "datapool:bad-reference"
#: 404 / 403: the referenced file does not exist or the caller may not read it.
DATAPOOL_NOT_FOUND = "datapool:not-found"
DATAPOOL_FORBIDDEN = "datapool:forbidden"
#: 400: ``planqk serve`` has no data pools.
DATAPOOL_NOT_AVAILABLE = "datapool:not-available"

# --- executions -------------------------------------------------------------------------------

#: 404: no such execution (or another application's).
EXECUTION_NOT_FOUND = "execution:not-found"
#: 409: ``GET /{id}/result`` before the execution is final (``"status"`` in the body).
EXECUTION_NOT_FINISHED = "execution:not-finished"
#: 404: ``GET /{id}/result/{file}`` for a file the execution does not have.
RESULT_FILE_NOT_FOUND = "execution:result-file-not-found"

# --- authentication, subscription and plan limits (the gateway only) -------------------------

UNAUTHORIZED = "unauthorized"
INVALID_TOKEN = "invalid_token"
SERVICE_NOT_FOUND = "service:not-found"
SERVICE_NOT_PUBLISHED = "service:not-published"
SERVICE_VERSION_NOT_FOUND = "service:version-not-found"
SUBSCRIPTION_REQUIRED = "subscription:required"
RATE_LIMIT_REQUESTS = "rate-limit:requests-per-minute"
RATE_LIMIT_CONCURRENT = "rate-limit:concurrent-executions"

# --- the server itself ------------------------------------------------------------------------

#: 503: the server is stopping and takes no new executions.
UNAVAILABLE = "unavailable"
#: 404: ``planqk serve``'s Swagger UI files are not installed.
NOT_INSTALLED = "not-installed"

# --- the outcome of a failed or cancelled execution (``GET /{id}/result``) --------------------

#: Cancelled (before it started or while it was running).
JOB_CANCELLED = "job:cancelled"
#: The program ended without the runner printing a response.
JOB_NO_RESULT = "job:no-result"
#: The platform (or ``planqk serve``) failed to run the execution.
PLATFORM_ERROR = "platform:error"
