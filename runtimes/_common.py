"""Helpers both runtimes share."""

from __future__ import annotations

import codecs
import shutil
from pathlib import Path

# User code (another uid) must read the code and input the worker writes, but never write them.
READABLE_DIR = 0o755


def has_requirements(requirements: str) -> bool:
    """Whether ``requirements.txt`` names anything (comments and blank lines do not count)."""
    return any(line.strip() and not line.strip().startswith("#") for line in requirements.splitlines())


def pip_error(lines: list[str]) -> str:
    """pip's own explanation of a failure: its ERROR lines, else the end of its output."""
    errors = [line for line in lines if line.startswith("ERROR:")]
    if not errors:
        errors = [line for line in lines[-15:] if line.strip()]
    return "\n".join(errors)


def rmtree(path: Path) -> None:
    """Remove a file, a link (never what it points to) or a folder tree; missing is fine."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def decode_prefix(data: bytes, offset: int) -> tuple[str, int]:
    """Decode ``data`` up to its last complete UTF-8 character; invalid bytes become U+FFFD."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = decoder.decode(data, final=False)
    pending = len(decoder.getstate()[0])
    return text, offset + len(data) - pending
