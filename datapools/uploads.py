"""Request-level guard for data pool uploads.

``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not cover multipart files, so a file upload is guarded here:
:class:`MeteredUploadHandler` replaces Django's handlers for the upload views, writes every file
to a temporary file on disk (never whole into memory), counts and hashes the bytes as they arrive
and stops reading file content once the request carries more than the limit.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest


class MeteredUploadHandler(TemporaryFileUploadHandler):
    """Streams file fields to temporary files, with ``metered_size`` and ``metered_sha256`` set.

    After parsing, ``refused`` is true when the request's files exceeded ``max_bytes``: the
    offending file is then missing from ``request.FILES`` and the view reports the limit.
    """

    def __init__(self, request: HttpRequest | None = None, *, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.total = 0
        self.refused = False
        self.refused_name = ""
        self._digest = hashlib.sha256()
        self._size = 0

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> None:
        # A body longer than the limit plus room for form fields cannot fit: refuse before any
        # file byte reaches the disk. The declared length can lie, so the bytes are counted too.
        slack = (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) + 64 * 1024
        if content_length and content_length > self.max_bytes + slack:
            self.refused = True
        return None

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self._digest = hashlib.sha256()
        self._size = 0
        self.refused_name = file_name

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.total += len(raw_data)
        self._size += len(raw_data)
        if self.refused or self.total > self.max_bytes:
            self.refused = True
            # Drop the partial file; connection_reset=False lets Django drain the rest of the
            # body (unstored) so that the browser receives our error page, not a reset.
            raise StopUpload(connection_reset=False)
        self._digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size: int) -> TemporaryUploadedFile:
        uploaded = super().file_complete(file_size)
        uploaded.metered_size = self._size
        uploaded.metered_sha256 = self._digest.hexdigest()
        return uploaded


def install_upload_handler(request: HttpRequest, *, max_bytes: int) -> MeteredUploadHandler:
    """Put the metered handler in place; call before anything reads ``request.POST``/``FILES``."""
    handler = MeteredUploadHandler(request, max_bytes=max_bytes)
    request.upload_handlers = [handler]
    return handler
