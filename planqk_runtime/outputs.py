"""Result files: what a program wrote into its output directory, taken out safely.

Standard library only: the container's supervisor (:mod:`planqk_runtime.container`) uses it
inside the container, the local runtime on the worker. One set of rules, applied once the
execution has ended and none of its processes is left (so nothing can change the folder while
it is read):

- only regular files directly in the folder count (as ``qhub-serve`` lists them); folders,
  symbolic links (to ``/etc/passwd`` or anywhere), FIFOs, devices and sockets are refused, and
  so is a file with more than one hard link (a name for somebody else's file);
- a file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked on the open descriptor
  (``fstat``), so a link swapped in after the listing is refused as well;
- at most ``max_files`` files (by name order), each at most ``max_file_bytes``, all together at
  most ``max_total_bytes``; what is over a cap is refused with a note, the rest is kept;
- every name becomes a safe file name (:func:`safe_name`): letters, digits, ``.``, ``_`` and
  ``-``, no leading dot, at most 200 characters, unique within the execution.

Refusals are returned as notes (``"... not kept"``) for the execution's log.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Where a program finds its output directory (Kipu's name, ``qhub.commons.constants``).
OUTPUT_DIRECTORY_ENV = "OUTPUT_DIRECTORY"
#: Where it is in a container (Kipu's default, ``/var/runtime/output``).
CONTAINER_OUTPUT_DIR = "/var/runtime/output"
NAME_MAX = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_COPY_BYTES = 1 << 20
# Entries past the count cap that are still looked at, so refusals among them are reported.
_INSPECT_EXTRA = 1000


@dataclass(frozen=True)
class OutputLimits:
    max_files: int = 100
    max_file_bytes: int = 50 * 1024 * 1024
    max_total_bytes: int = 200 * 1024 * 1024

    def to_args(self) -> list[str]:
        return [str(int(self.max_files)), str(int(self.max_file_bytes)), str(int(self.max_total_bytes))]

    @classmethod
    def from_args(cls, args: list[str]) -> OutputLimits:
        return cls(int(args[0]), int(args[1]), int(args[2]))


@dataclass(frozen=True)
class OutputFile:
    """One kept file: its safe ``name``, where it is now and its size in bytes."""

    name: str
    path: str
    size: int
    original_name: str = ""

    @property
    def media_type(self) -> str:
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    def open(self) -> BinaryIO:
        """The file for reading, checked again (regular, one link, the size seen when listed)."""
        fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size != self.size:
            os.close(fd)
            raise OSError(f"{self.name} changed after it was listed")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")


def safe_name(raw: str, taken: set[str] | None = None) -> str:
    """``raw`` as a file name that is safe in a URL path segment and a storage path."""
    name = _UNSAFE.sub("_", raw).lstrip(".")
    name = name.replace("..", "_")[:NAME_MAX] or "file"
    if taken is None or name not in taken:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix, dot = name, "", ""
    for counter in range(2, 10_000):
        candidate = f"{stem[: NAME_MAX - len(suffix) - 8]}-{counter}{dot}{suffix}"
        if candidate not in taken:
            return candidate
    raise ValueError("too many files with the same name")


def _entries(directory: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as found:
            yield from sorted(found, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return


def collect(directory: Path, limits: OutputLimits) -> tuple[list[OutputFile], list[str]]:
    """The files to keep from ``directory`` and notes on what was refused (see the module doc)."""
    kept: list[OutputFile] = []
    notes: list[str] = []
    taken: set[str] = set()
    total = 0
    skipped_for_count = 0
    if directory.is_symlink():
        return kept, ["the output directory was replaced by a link: no result files are kept"]
    seen = 0
    for entry in _entries(directory):
        shown = entry.name.encode("unicode_escape", "backslashreplace").decode("ascii")[:100]
        seen += 1
        if len(kept) >= limits.max_files and seen > limits.max_files + _INSPECT_EXTRA:
            # Past the cap files are only counted: a million of them must not cost a million opens.
            skipped_for_count += 1
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            kind = "a link" if entry.is_symlink() else "not readable"
            notes.append(f"result file {shown!r} is {kind}: not kept")
            continue
        try:
            info = os.fstat(fd)
        finally:
            os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            notes.append(f"{shown!r} in the output directory is a folder: only files directly in it are kept")
            continue
        if not stat.S_ISREG(info.st_mode):
            notes.append(f"result file {shown!r} is not a regular file: not kept")
            continue
        if info.st_nlink != 1:
            notes.append(f"result file {shown!r} has other names (hard links): not kept")
            continue
        if info.st_size > limits.max_file_bytes:
            notes.append(f"result file {shown!r} is larger than {limits.max_file_bytes} bytes: not kept")
            continue
        if total + info.st_size > limits.max_total_bytes:
            notes.append(f"result file {shown!r} would take all result files past {limits.max_total_bytes} bytes")
            continue
        if len(kept) >= limits.max_files:
            skipped_for_count += 1
            continue
        name = safe_name(entry.name, taken)
        taken.add(name)
        total += info.st_size
        kept.append(OutputFile(name=name, path=entry.path, size=info.st_size, original_name=entry.name))
    if skipped_for_count:
        notes.append(f"more than {limits.max_files} result files: {skipped_for_count} more not kept")
    return kept, notes


def copy_out(files: list[OutputFile], destination: Path) -> list[OutputFile]:
    """Copy ``files`` into ``destination`` (a fresh folder) under their safe names; returns the copies.

    For the container's supervisor: the output directory is a tmpfs that goes with the container.
    A file that changed since it was listed is left out.
    """
    destination.mkdir(parents=True, exist_ok=True)
    copies = []
    for item in files:
        target = destination / item.name
        try:
            with item.open() as src:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with os.fdopen(fd, "wb") as dst:
                    left = item.size
                    while left > 0:
                        chunk = src.read(min(_COPY_BYTES, left))
                        if not chunk:
                            break
                        dst.write(chunk)
                        left -= len(chunk)
        except OSError:
            with contextlib.suppress(OSError):
                target.unlink()
            continue
        copies.append(OutputFile(name=item.name, path=str(target), size=item.size, original_name=item.original_name))
    return copies
