"""Handing a stored file to a caller who passed the permission check, with the storage's own means.

Nothing under ``MEDIA_URL`` is served directly (see ``planqk_portal/urls.py``): every download is
a view that checks access first and then calls :func:`stored_file_response`, so revoking a share
or deleting a file takes effect on the next request. How the bytes travel:

- S3-compatible storage (``AWS_STORAGE_BUCKET_NAME``): a redirect to a presigned URL that lives
  ``PLANQK_DOWNLOAD_URL_SECONDS`` (default 60) and carries the name and type as response headers,
  so the portal never streams the object and a leaked link soon stops working.
- Behind nginx, ``PLANQK_SENDFILE=x-accel-redirect``: an empty answer with ``X-Accel-Redirect``
  to ``PLANQK_SENDFILE_PREFIX`` + the stored name (an ``internal`` location aliasing
  ``MEDIA_ROOT``); behind Apache or lighttpd, ``PLANQK_SENDFILE=x-sendfile``: ``X-Sendfile`` with
  the absolute path. The proxy sends the file; the portal's headers stay.
- Otherwise the portal streams it (``FileResponse``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header

SENDFILE_MODES = {"", "none", "x-accel-redirect", "x-sendfile"}


def _is_object_storage(storage: Any) -> bool:
    return hasattr(storage, "bucket_name") and hasattr(storage, "connection")


def stored_file_response(
    *, name: str, filename: str, content_type: str, opener: Any = None, headers: dict[str, str] | None = None
) -> HttpResponse:
    """The download of the stored object ``name`` (already permission-checked by the caller).

    ``opener``: a callable returning an open file, used when the portal streams it itself (lets
    the caller map storage errors to its own answers). ``headers`` go on every kind of answer.
    """
    storage = default_storage
    mode = (getattr(settings, "PLANQK_SENDFILE", "") or "").lower()
    streams = not _is_object_storage(storage) and mode not in {"x-accel-redirect", "x-sendfile"}
    if opener is not None and not streams:
        opener().close()  # the caller's check that the object is there (a deleted file is a 404)
    disposition = content_disposition_header(as_attachment=True, filename=filename)
    if _is_object_storage(storage):
        url = storage.url(
            name,
            parameters={"ResponseContentDisposition": disposition, "ResponseContentType": content_type},
            expire=settings.PLANQK_DOWNLOAD_URL_SECONDS,
        )
        response: HttpResponse = HttpResponseRedirect(url)
    elif mode == "x-accel-redirect":
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.PLANQK_SENDFILE_PREFIX.rstrip("/") + "/" + quote(name)
        response["Content-Disposition"] = disposition
    elif mode == "x-sendfile":
        response = HttpResponse(content_type=content_type)
        response["X-Sendfile"] = storage.path(name)
        response["Content-Disposition"] = disposition
    else:
        handle = opener() if opener is not None else storage.open(name, "rb")
        response = FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
    # Never kept by a shared cache: a revoked share must not be answered from one.
    response["Cache-Control"] = "private, no-store"
    for header, value in (headers or {}).items():
        response[header] = value
    return response
