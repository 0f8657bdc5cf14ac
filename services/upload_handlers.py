"""Stop reading an upload once it passes ``PLANQK_MAX_UPLOAD_MB``.

Django streams file fields to temporary files whatever their size (``DATA_UPLOAD_MAX_MEMORY_SIZE``
covers only the other fields), so without this a huge upload would fill the disk before the
size check in :mod:`services.uploads` ever ran.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest

from planqk_portal.errors import ApplicationError


def max_upload_bytes() -> int:
    return int(settings.PLANQK_MAX_UPLOAD_MB) * 1024 * 1024


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Writes files to temporary files and gives up (``refused``) past ``max_bytes`` in total."""

    def __init__(self, request: HttpRequest | None = None, *, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.total = 0
        self.refused = False

    def handle_raw_input(
        self, input_data: Any, META: dict[str, Any], content_length: int, boundary: bytes, encoding: str | None = None
    ) -> None:
        # An API spec (1 MB) and form fields fit in the slack; a body far beyond it cannot fit.
        if content_length and content_length > self.max_bytes + 2 * 1024 * 1024 + settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            self.refused = True

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.total += len(raw_data)
        if self.refused or self.total > self.max_bytes + 2 * 1024 * 1024:
            self.refused = True
            # Let Django drain the body unstored so the client gets our answer, not a reset.
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)


def install(request: HttpRequest) -> LimitedUploadHandler:
    """Use the limited handler for this request; call before anything reads POST or FILES."""
    handler = LimitedUploadHandler(request, max_bytes=max_upload_bytes())
    request.upload_handlers = [handler]
    return handler


def too_large_error() -> ApplicationError:
    return ApplicationError(
        f"The upload is larger than {settings.PLANQK_MAX_UPLOAD_MB} MB, the most this platform accepts. Leave data "
        "sets out of the archive (use data pools) and zip only src, requirements.txt and openapi-spec.yml.",
        code="upload:too-large",
        status=413,
    )
