"""A build's locked requirement set: what lets any host materialise the environment of a build.

At build time uv reports what the environment holds (``uv pip freeze``) and pins each of those
distributions with the hashes of the files it was installed from (``uv pip compile
--generate-hashes`` over the build's own wheel folders, offline). The text goes into the build
handle; a host without the environment installs exactly that set with ``--require-hashes
--no-deps`` (:meth:`runtimes.local.environments.Environments.materialise`).

The handle lives in the database, so its lock is read as hostile: :func:`parse_lock` accepts
only ``name==version --hash=sha256:<hex>...`` lines and the index options the operator allows,
nothing an installer would read as a path, a URL or another option.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from runtimes.requirements import (
    Indexes,
    LogicalLine,
    RequirementsError,
    canonical_line,
    logical_lines,
    split_indexes,
)

#: The file in an environment holding the lock it was built or materialised from.
LOCK_FILE = ".planqk-lock"
#: The first line of every lock: an empty environment has a lock too (this line alone).
LOCK_HEADER = "# planqk lock 1: every installed distribution, pinned with its hashes by uv\n"
_HASH_RE = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
MAX_LOCK_BYTES = 1 << 20


class LockError(ValueError):
    """A lock the platform does not install (edited, or not written by the platform)."""


@dataclass(frozen=True)
class Lock:
    """A parsed lock: its canonical text (one line per distribution), pins and indexes."""

    text: str
    indexes: Indexes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def names(self) -> list[str]:
        return [line.split("==", 1)[0] for line in self.indexes.requirements]


def _pin(line: LogicalLine) -> str:
    tokens = line.text.split()
    hashes = [token for token in tokens if token.startswith("--hash")]
    rest = [token for token in tokens if not token.startswith("--hash")]
    if not hashes:
        raise LockError(f"line {line.number}: a pin without a hash")
    if len(rest) != 1 or any(not _HASH_RE.match(token) for token in hashes):
        raise LockError(f"line {line.number}: not 'name==version --hash=sha256:<hex>'")
    try:
        requirement = Requirement(canonical_line(LogicalLine(line.number, rest[0])))
    except (RequirementsError, InvalidRequirement) as exc:
        raise LockError(f"line {line.number}: {exc}") from None
    specifiers = list(requirement.specifier)
    if (
        requirement.extras
        or requirement.marker is not None
        or len(specifiers) != 1
        or specifiers[0].operator != "=="
        or not _VERSION_RE.match(specifiers[0].version)
    ):
        raise LockError(f"line {line.number}: not an exact pin ({rest[0]!r})")
    return f"{canonicalize_name(requirement.name)}=={specifiers[0].version} {' '.join(sorted(set(hashes)))}"


def parse_lock(text: str, *, allowed_index_urls: Sequence[str] = ()) -> Lock:
    """The lock ``text`` checked and in canonical form, or :class:`LockError` saying why not."""
    if not isinstance(text, str) or len(text.encode()) > MAX_LOCK_BYTES:
        raise LockError("the lock is not text of a sane size")
    if not text.startswith(LOCK_HEADER):
        raise LockError("not a lock the platform wrote (its first line is missing)")
    options: list[str] = []
    pins: dict[str, str] = {}
    try:
        lines = logical_lines(text)
    except RequirementsError as exc:
        raise LockError(str(exc)) from None
    for line in lines:
        if line.text.startswith("-") and not line.text.startswith("--hash"):
            try:
                option = canonical_line(line, allowed_index_urls=allowed_index_urls)
            except RequirementsError as exc:
                raise LockError(str(exc)) from None
            if not option.startswith("-"):
                raise LockError(f"line {line.number}: not an index option")
            options.append(option)
            continue
        pin = _pin(line)
        name = pin.split("==", 1)[0]
        if name in pins:
            raise LockError(f"line {line.number}: {name} is pinned twice")
        pins[name] = pin
    if sum(option.startswith("--index-url ") for option in options) > 1:
        raise LockError("a second --index-url")
    lines_out = [*options, *sorted(pins.values())]
    return Lock(LOCK_HEADER + "".join(f"{line}\n" for line in lines_out), split_indexes(lines_out))
