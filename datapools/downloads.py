"""File downloads shared by the pages and the REST API."""

from __future__ import annotations

import unicodedata

from django.http import HttpResponse

from planqk_portal.downloads import stored_file_response

from .models import DataFile
from .selectors import datafile_open


def download_filename(name: str) -> str:
    """A Content-Disposition-safe name: no folders, quotes, control characters or line breaks."""
    cleaned = "".join("_" if ch in '/\\"' or unicodedata.category(ch)[0] == "C" else ch for ch in name).strip(" .")
    return cleaned[:200] or "download"


def datafile_response(datafile: DataFile) -> HttpResponse:
    """The file as an attachment (callers check access first); 404 ``datapool:not-found`` when
    its content is gone. Streamed, or handed to the storage or proxy (planqk_portal.downloads).

    Only JSON keeps its type; everything else is ``application/octet-stream`` so that an uploaded
    HTML or SVG file can never render as a page of the portal.
    """
    handle = datafile_open(datafile=datafile)
    content_type = "application/json" if datafile.is_json else "application/octet-stream"
    return stored_file_response(
        name=datafile.file.name,
        filename=download_filename(datafile.name),
        content_type=content_type,
        opener=lambda: handle,
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"},
    )
