"""requirements.txt read as the installer reads it, then reduced to a canonical list.

A requirements file is read by pip's own rules (pip's ``req_file.preprocess``): the bytes are
decoded (a BOM or a PEP 263 ``coding:`` comment changes the encoding), split with
``str.splitlines()`` (which breaks at ``\\f``, ``\\v``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028``,
``\\u2029`` and ``\\r`` as well as ``\\n``), a line ending in a backslash is joined with the next,
``#`` comments that start a line or follow whitespace are removed, and ``${VAR}`` is replaced
from the environment. Each logical line is then split into arguments and options at the first
space-separated token that starts with ``-``.

:func:`canonical_requirements` mirrors those steps exactly and accepts only plain named
requirements (a name, extras, version specifiers, a marker), parsed by ``packaging`` (the PyPA
parser pip itself vendors). It returns a list of canonical requirement strings made of a small
ASCII alphabet that every installer splits and reads the same way. The installer is only ever
handed that list, written by the platform, never the provider's bytes: no parser differential
between this check and pip or uv can matter.

The one exception is an operator's allow-list of package indexes (``PLANQK_ALLOWED_INDEX_URLS``):
a line ``--index-url URL`` or ``--extra-index-url URL`` (also ``-i URL`` and ``--option=URL``)
whose URL is exactly, character for character, one of the allowed URLs is accepted and becomes
the canonical line ``--index-url URL`` / ``--extra-index-url URL``. Anything else about it (another
URL, more text on the line, a second ``--index-url``) is refused like any other option.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement

#: At most this many logical requirement lines (and this many physical lines).
MAX_LINES = 500

# pip's own expressions (pip/_internal/req/req_file.py).
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_ENV_VAR_RE = re.compile(r"\$\{[A-Z0-9_]+\}")
_PEP263_RE = re.compile(rb"coding[:=]\s*([-\w.]+)")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (codecs.BOM_UTF16_LE, "utf-16"),
)
# What a canonical requirement may contain: names, extras, specifiers and simple markers.
_CANONICAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],<>=!~*+ ;()'\"]*$")
# Marker values a real marker uses ("3.11", "linux", "x86_64", "CPython"): no spaces, quotes or '#'.
_MARKER_VALUE_RE = re.compile(r"""(['"])([^'"]*)\1""")
_MARKER_VALUE_OK = re.compile(r"^[A-Za-z0-9._+!*-]*$")
# pip treats a requirement that names an archive file as a local path.
_ARCHIVE_SUFFIXES = (".zip", ".whl", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tlz")
_ARCHIVE_SUFFIXES += (".tar.lz", ".tar.lzma")
# The index options an allowed URL may follow, and the canonical spelling of each.
_INDEX_OPTIONS = {
    "--index-url": "--index-url",
    "-i": "--index-url",
    "--extra-index-url": "--extra-index-url",
}
# What an allowed index URL may consist of: no space, quote, '#', '$', backslash or control character,
# so pip's shlex split of the option, uv and a command line all read it the same.
_INDEX_URL_RE = re.compile(r"^[A-Za-z0-9._~:/?&=%+@!,;*()\[\]-]+$")


class RequirementsError(ValueError):
    """A requirements file the platform does not install; ``line`` is its 1-based line number."""

    def __init__(self, message: str, *, line: int | None = None, text: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.text = text


@dataclass(frozen=True)
class LogicalLine:
    """One line as pip sees it after joining continuations and removing comments."""

    number: int
    text: str


def decode(raw: bytes) -> str:
    """The text as pip decodes a requirements file; only UTF-8 (and its BOM) is accepted.

    pip honours other BOMs and a PEP 263 coding comment in the first two lines; a file that
    would make pip decode it differently from UTF-8 is refused, so both read the same text.
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            if encoding != "utf-8":
                raise RequirementsError(f"the file is {encoding.upper()}-encoded; save it as UTF-8")
            raw = raw[len(bom) :]
            break
    else:
        for number, line in enumerate(raw.split(b"\n")[:2], start=1):
            match = _PEP263_RE.search(line) if line[:1] == b"#" else None
            if match and codecs.lookup(match.group(1).decode("ascii", "replace")).name != "utf-8":
                raise RequirementsError(
                    f"line {number}: an encoding declaration other than UTF-8 is not accepted",
                    line=number,
                    text=line.decode("latin-1"),
                )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequirementsError("the file is not UTF-8 text") from exc


def logical_lines(text: str) -> list[LogicalLine]:
    """pip's ``preprocess``: ``splitlines``, joined continuations, comments and blanks removed."""
    physical = text.splitlines()
    if len(physical) > MAX_LINES * 4:
        raise RequirementsError(f"the file has more than {MAX_LINES * 4} lines")
    joined: list[LogicalLine] = []
    pending: list[str] = []
    first = 0
    for number, line in enumerate(physical, start=1):
        if not line.endswith("\\") or _COMMENT_RE.match(line):
            if _COMMENT_RE.match(line):
                line = " " + line
            if pending:
                pending.append(line)
                joined.append(LogicalLine(first, "".join(pending)))
                pending = []
            else:
                joined.append(LogicalLine(number, line))
        else:
            if not pending:
                first = number
            pending.append(line.strip("\\"))
    if pending:
        joined.append(LogicalLine(first, "".join(pending)))
    lines = []
    for entry in joined:
        stripped = _COMMENT_RE.sub("", entry.text).strip()
        if stripped:
            lines.append(LogicalLine(entry.number, stripped))
    if len(lines) > MAX_LINES:
        raise RequirementsError(f"the file lists more than {MAX_LINES} requirements")
    return lines


def _refuse(line: LogicalLine, why: str) -> RequirementsError:
    shown = line.text if len(line.text) <= 120 else line.text[:120] + "…"
    return RequirementsError(f"line {line.number}: {shown!r}: {why}", line=line.number, text=line.text)


def parse_allowed_index_urls(value: str) -> tuple[str, ...]:
    """The operator's comma-separated list of index URLs, each checked; ValueError for a bad one."""
    urls = []
    for raw in value.split(","):
        url = raw.strip()
        if not url:
            continue
        parts = urlsplit(url)
        if not _INDEX_URL_RE.match(url) or parts.scheme not in ("https", "http", "file") or not parts.path:
            raise ValueError(f"{url!r} is not an index URL (http, https or file, without spaces, quotes, # or $)")
        urls.append(url)
    return tuple(urls)


def _index_line(line: LogicalLine, tokens: list[str], allowed: Sequence[str]) -> str | None:
    """The canonical index option of a line that is one, naming an allowed index; else None."""
    if not allowed:
        return None
    first = tokens[0]
    name, equals, value = first.partition("=")
    if name not in _INDEX_OPTIONS or (name == "-i" and equals):
        return None
    if equals:
        if len(tokens) != 1:
            return None
    elif len(tokens) != 2:
        return None
    else:
        value = tokens[1]
    if value not in allowed:
        raise _refuse(line, f"{value!r} is not one of the package indexes this platform allows ({', '.join(allowed)})")
    return f"{_INDEX_OPTIONS[name]} {value}"


def canonical_line(line: LogicalLine, *, allowed_index_urls: Sequence[str] = ()) -> str:
    """The canonical form of one logical line, or :class:`RequirementsError` saying why not."""
    text = line.text
    if _ENV_VAR_RE.search(text) or "$" in text:
        raise _refuse(line, "environment variables (${...}) are not accepted")
    tokens = text.split(" ")
    index = _index_line(line, tokens, allowed_index_urls) if tokens[0].startswith("-") else None
    if index is not None:
        return index
    option = next((token for token in tokens if token.startswith("-")), None)
    if option is not None:
        raise _refuse(
            line, f"installer options such as {option!r} are not accepted; list packages only (e.g. numpy==1.26.4)"
        )
    if any(ch in text for ch in "/\\") or text.lower().startswith("file:"):
        raise _refuse(line, "paths and URLs cannot be installed on the platform; name a published package")
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise _refuse(line, f"not a package requirement ({str(exc).splitlines()[0]})") from None
    if req.url:
        raise _refuse(line, "direct URL references are not accepted; name a published package")
    if req.name.lower().endswith(_ARCHIVE_SUFFIXES):
        raise _refuse(line, "a requirement cannot name an archive file")
    if req.marker is not None:
        for _quote, value in _MARKER_VALUE_RE.findall(str(req.marker)):
            if not _MARKER_VALUE_OK.match(value):
                raise _refuse(line, f"the marker value {value!r} has characters no environment marker uses")
    canonical = str(req)
    if not _CANONICAL_RE.match(canonical) or any(t.startswith("-") for t in canonical.split(" ")):
        raise _refuse(line, "the requirement has characters the platform does not accept")
    return canonical


def canonical_requirements(raw: bytes | str, *, allowed_index_urls: Sequence[str] = ()) -> list[str]:
    """The provider's requirements file as a list of canonical lines (refusing anything else).

    Requirements, and the index options of :data:`allowed_index_urls` (one ``--index-url`` at most).
    """
    text = decode(raw) if isinstance(raw, bytes) else raw
    lines = []
    primary = 0
    for line in logical_lines(text):
        canonical = canonical_line(line, allowed_index_urls=allowed_index_urls)
        if canonical.startswith("--index-url "):
            primary += 1
            if primary > 1:
                raise _refuse(line, "a second --index-url; name one, and others with --extra-index-url")
        if canonical not in lines or not canonical.startswith("-"):
            lines.append(canonical)
    return lines


@dataclass(frozen=True)
class Indexes:
    """The canonical lines split into requirements and the indexes they come from."""

    requirements: list[str]
    index_url: str = ""
    extra_index_urls: tuple[str, ...] = field(default_factory=tuple)

    @property
    def options(self) -> list[str]:
        """The installer options naming the indexes (empty: the platform's configured ones)."""
        argv = ["--index-url", self.index_url] if self.index_url else []
        for url in self.extra_index_urls:
            argv += ["--extra-index-url", url]
        return argv


def split_indexes(lines: list[str]) -> Indexes:
    """Separate what :func:`canonical_requirements` returned into requirements and index URLs."""
    requirements, extra = [], []
    index_url = ""
    for line in lines:
        if line.startswith("--index-url "):
            index_url = line.split(" ", 1)[1]
        elif line.startswith("--extra-index-url "):
            extra.append(line.split(" ", 1)[1])
        else:
            requirements.append(line)
    return Indexes(requirements, index_url, tuple(extra))


def canonical_text(requirements: list[str]) -> str:
    """The file the platform hands the installer: one canonical requirement per ``\\n``-ended line."""
    return "".join(f"{line}\n" for line in requirements)
