"""The user code template (ARCHITECTURE.md section 2): the one source of its files.

The portal's ``template.zip`` / ``template.tar.gz`` downloads, ``planqk init`` and the ``sum``
sample service all come from the files in ``planqk_template/files/``; nothing copies them.

Layout (paths relative to the service folder, no top-level folder in the archives)::

    Dockerfile  openapi-spec.yml  environment.yml  requirements.txt  README.md
    input/data.json  input/params.json
    src/__init__.py  src/__main__.py  src/program.py  src/libs/__init__.py
    src/libs/return_objects.py
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

__all__ = [
    "CURRENT_TEMPLATE_PATHS",
    "TEMPLATE_PATHS",
    "build_tar_gz",
    "build_zip",
    "files_dir",
    "template_files",
    "write_files",
    "write_template",
    "zip_bytes",
]

#: Every file of the template, in archive order. An explicit list, so stray files next to them
#: (``__pycache__``, editor backups) never reach users.
TEMPLATE_PATHS: tuple[str, ...] = (
    "Dockerfile",
    "README.md",
    "environment.yml",
    "openapi-spec.yml",
    "requirements.txt",
    "input/data.json",
    "input/params.json",
    "src/__init__.py",
    "src/__main__.py",
    "src/program.py",
    "src/libs/__init__.py",
    "src/libs/return_objects.py",
)

#: The current generation's template (``planqk init --current``; files in ``planqk_template/current/``):
#: a typed ``run()`` with pydantic models, its result as the return value and a result file.
CURRENT_TEMPLATE_PATHS: tuple[str, ...] = (
    "README.md",
    "openapi-spec.yml",
    "requirements.txt",
    "input/input.json",
    "src/__init__.py",
    "src/__main__.py",
    "src/program.py",
)

# A fixed timestamp makes the archives byte-for-byte reproducible (stable ETags, cacheable).
_ARCHIVE_DATE = (2024, 1, 1, 0, 0, 0)
_ARCHIVE_MTIME = 1704067200  # 2024-01-01 00:00:00 UTC

_DEFAULT_TITLE = "PlanQK Service"


def files_dir(*, current: bool = False) -> Path:
    """The folder holding the template's files (the current generation's with ``current``)."""
    return Path(__file__).resolve().parent / ("current" if current else "files")


def _with_name(files: dict[str, bytes], name: str) -> dict[str, bytes]:
    # The name goes where a human reads it (API title, README heading); json.dumps gives a valid
    # YAML double-quoted scalar whatever the name contains.
    spec = files["openapi-spec.yml"].decode("utf-8")
    title_line = f"  title: {_DEFAULT_TITLE}\n"
    if title_line not in spec:
        raise RuntimeError("planqk_template/files/openapi-spec.yml lost its title line")
    files["openapi-spec.yml"] = spec.replace(title_line, f"  title: {json.dumps(name)}\n", 1).encode()
    readme = files["README.md"].decode("utf-8")
    files["README.md"] = readme.replace(f"# {_DEFAULT_TITLE}\n", f"# {name}\n", 1).encode()
    return files


def template_files(*, name: str | None = None, current: bool = False) -> dict[str, bytes]:
    """The template as ``{relative path: content}``, in :data:`TEMPLATE_PATHS` order.

    ``name`` (optional) is the service's name, put into the API spec's title and the README.
    ``current``: the current generation's template (:data:`CURRENT_TEMPLATE_PATHS`).
    """
    root = files_dir(current=current)
    paths = CURRENT_TEMPLATE_PATHS if current else TEMPLATE_PATHS
    files = {path: (root / path).read_bytes() for path in paths}
    if name:
        files = _with_name(files, name)
    return files


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A reproducible zip of ``files`` (``{relative path: content}``), no top-level folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, content in files.items():
            info = zipfile.ZipInfo(path, date_time=_ARCHIVE_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            archive.writestr(info, content)
    return buffer.getvalue()


def build_zip(*, name: str | None = None) -> bytes:
    """``template.zip``: the template's files at the archive's top level."""
    return zip_bytes(template_files(name=name))


def build_tar_gz(*, name: str | None = None) -> bytes:
    """``template.tar.gz``: the template's files at the archive's top level."""
    files = template_files(name=name)
    directories = sorted({str(Path(path).parent) for path in files} - {"."})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = _ARCHIVE_MTIME
            archive.addfile(info)
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = _ARCHIVE_MTIME
            archive.addfile(info, io.BytesIO(content))
    compressed = io.BytesIO()
    # mtime=0 keeps the gzip header reproducible as well.
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue()


def write_files(dest: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (``{relative path: content}``) into the folder ``dest`` (created when missing).

    Refuses with :class:`FileExistsError`, before writing anything, when any of them exists in
    ``dest`` already: ``planqk init`` must never overwrite a user's code.
    """
    dest = Path(dest)
    existing = [path for path in files if (dest / path).exists() or (dest / path).is_symlink()]
    if existing:
        raise FileExistsError(
            f"{dest} already contains {', '.join(existing)}; refusing to overwrite it (choose an empty or new folder)"
        )
    for path, content in files.items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        # "xb": even a file that appeared since the check above is never overwritten.
        with open(target, "xb") as handle:
            handle.write(content)


def write_template(dest: Path, *, name: str | None = None, current: bool = False) -> None:
    """Write the template into the folder ``dest`` (created when missing), as ``planqk init`` does.

    ``name`` (optional) goes into the API spec's title and the README; ``current`` writes the
    current generation's template. Raises :class:`FileExistsError`, before writing anything,
    when a template file exists in ``dest``.
    """
    write_files(dest, template_files(name=name, current=current))
