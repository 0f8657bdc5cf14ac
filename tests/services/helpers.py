"""Archives, uploads and waiting for builds, shared by the services tests."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterable

from django.core.files.uploadedfile import SimpleUploadedFile

from planqk_samples import sample_zip
from services.models import ServiceVersion

PROGRAM = b"def run(data=None, params=None):\n    return {'ok': True}\n"


def make_zip(
    files: dict[str, bytes] | None = None,
    *,
    entries: Iterable[zipfile.ZipInfo | tuple[zipfile.ZipInfo, bytes]] = (),
    base: bool = True,
) -> bytes:
    """A zip with ``files`` (plus a minimal valid service when ``base``) and raw extra entries."""
    content = {"src/__init__.py": b"", "src/program.py": PROGRAM, "requirements.txt": b""} if base else {}
    content.update(files or {})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in content.items():
            archive.writestr(name, data)
        for entry in entries:
            info, data = entry if isinstance(entry, tuple) else (entry, b"")
            archive.writestr(info, data)
    return buffer.getvalue()


def upload(data: bytes, name: str = "user_code.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/zip")


def sample_upload(name: str) -> SimpleUploadedFile:
    return upload(sample_zip(name))


def wait_for_status(
    version: ServiceVersion, statuses: set[str], *, timeout: float = 300, worker: object | None = None
) -> ServiceVersion:
    """Poll the database until the version reaches one of ``statuses`` (a generous deadline, not a timing check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        version.refresh_from_db()
        if version.status in statuses:
            return version
        time.sleep(0.3)
    log = "".join(version.log_chunks.values_list("text", flat=True))
    worker_log = worker.log()[-4000:] if worker is not None and hasattr(worker, "log") else ""
    raise AssertionError(
        f"version {version.version} stayed {version.status}, wanted {statuses}\n"
        f"--- build log\n{log}\n--- worker\n{worker_log}"
    )


def build_log(version: ServiceVersion) -> str:
    return "".join(version.log_chunks.order_by("seq").values_list("text", flat=True))
