"""Checks on uploaded user code archives and API specs.

Everything a provider uploads is hostile until proven otherwise. An archive is judged from its
central directory first (entry count, names, link and special-file bits, encryption), then
every entry is decompressed as a stream with the bytes *counted* (the sizes in the headers are
never trusted) so a zip bomb stops at the limit, not at the end of the disk. Extraction repeats
every check and writes only into a fresh, empty folder with ``O_EXCL | O_NOFOLLOW``.

Each rejection is an :class:`~planqk_portal.errors.ApplicationError` with a stable code such as
``upload:zip-slip``, so the portal, the API and the CLI can tell the provider what is wrong.
"""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from django.conf import settings

from planqk_portal.errors import ApplicationError

PROGRAM_PATH = "src/program.py"
REQUIREMENTS_PATH = "requirements.txt"
ENVIRONMENT_PATHS = ("environment.yml", "environment.yaml")
SPEC_PATHS = ("openapi-spec.yml", "openapi-spec.yaml", "openapi-spec.json", "openapi.yml", "openapi.yaml")

#: Files read into memory while inspecting; anything larger than this is refused.
MAX_TEXT_FILE_BYTES = 1024 * 1024
MAX_SPEC_BYTES = 1024 * 1024
#: An API spec may expand (YAML aliases) to at most this many nodes.
MAX_SPEC_NODES = 200_000
MAX_NAME_LENGTH = 400
MAX_REQUIREMENT_LINES = 500

_CHUNK = 64 * 1024
_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class UploadLimits:
    """How much an upload may hold; :meth:`from_settings` reads the ``PLANQK_*`` settings."""

    max_upload_bytes: int = 50 * 1024 * 1024
    max_entries: int = 5000
    max_total_bytes: int = 500 * 1024 * 1024
    max_ratio: int = 100
    #: Entries (and archives) smaller than this are never called bombs: tiny text files of
    #: repeated characters compress extremely well and are harmless.
    ratio_floor_bytes: int = 1024 * 1024

    @classmethod
    def from_settings(cls) -> UploadLimits:
        return cls(
            max_upload_bytes=settings.PLANQK_MAX_UPLOAD_MB * 1024 * 1024,
            max_entries=settings.PLANQK_UPLOAD_MAX_ENTRIES,
            max_total_bytes=settings.PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB * 1024 * 1024,
            max_ratio=settings.PLANQK_UPLOAD_MAX_RATIO,
        )


@dataclass
class ArchiveSummary:
    """What an accepted archive holds, as far as the platform cares."""

    files: list[str] = field(default_factory=list)
    total_bytes: int = 0
    #: The pip requirements to install (from requirements.txt, else environment.yml's pip list).
    requirements: str = ""
    requirements_source: str = ""
    #: Conda packages of an environment.yml that pip cannot install (reported in the build log).
    ignored_conda_packages: list[str] = field(default_factory=list)
    #: The archive's own openapi-spec.yml, if it has one (raw bytes, not yet validated).
    api_spec: bytes | None = None
    api_spec_name: str = ""


def _reject(message: str, code: str, status: int = 400) -> ApplicationError:
    return ApplicationError(message, code=code, status=status)


# --- archives ---------------------------------------------------------------------------------


def _file_size(fileobj: IO[bytes]) -> int:
    position = fileobj.tell()
    fileobj.seek(0, os.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(position)
    return size


def check_upload_size(fileobj: IO[bytes], *, limits: UploadLimits | None = None) -> int:
    """The upload's size in bytes; refuses an upload above ``PLANQK_MAX_UPLOAD_MB``."""
    limits = limits or UploadLimits.from_settings()
    size = _file_size(fileobj)
    if size > limits.max_upload_bytes:
        raise _reject(
            f"The upload is {size / 1024 / 1024:.1f} MB; at most {limits.max_upload_bytes // (1024 * 1024)} MB "
            "are accepted. Leave data sets out of the archive (use data pools) and zip only src, "
            "requirements.txt and openapi-spec.yml.",
            "upload:too-large",
            413,
        )
    if size == 0:
        raise _reject("The uploaded file is empty.", "upload:empty")
    return size


def _clean_name(info: zipfile.ZipInfo) -> str:
    """The entry's relative path, or a rejection naming what is wrong with it."""
    raw = info.orig_filename
    if "\\" in raw:
        raise _reject(
            f"The archive entry {raw!r} contains a backslash. Create the zip with a tool that writes "
            "'/' as the path separator (e.g. `zip -r` or Python's zipfile).",
            "upload:backslash",
        )
    if "\x00" in raw or _CONTROL_RE.search(raw):
        raise _reject(f"The archive entry {raw!r} has control characters in its name.", "upload:bad-name")
    if len(raw) > MAX_NAME_LENGTH:
        raise _reject(f"The archive entry {raw[:60]!r}… has a name longer than {MAX_NAME_LENGTH}.", "upload:bad-name")
    if raw.startswith("/") or _DRIVE_RE.match(raw):
        raise _reject(
            f"The archive entry {raw!r} has an absolute path; entries must be relative (src/program.py).",
            "upload:absolute-path",
        )
    parts = raw.rstrip("/").split("/")
    if ".." in parts:
        raise _reject(
            f"The archive entry {raw!r} points outside the archive ('..' in its path).",
            "upload:zip-slip",
        )
    # Some tools write "./src/program.py"; a leading "." is harmless, any other odd part is not.
    while parts and parts[0] == ".":
        parts.pop(0)
    if not parts or any(part in ("", ".") for part in parts):
        raise _reject(f"The archive entry {raw!r} has an empty or '.' path component.", "upload:bad-name")
    return "/".join(parts) + ("/" if raw.endswith("/") else "")


def _check_entry_type(info: zipfile.ZipInfo, name: str) -> None:
    if info.flag_bits & 0x1:
        raise _reject(
            f"The archive entry {name!r} is encrypted. Upload an archive without a password.", "upload:encrypted"
        )
    mode = info.external_attr >> 16
    if mode:
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise _reject(
                f"The archive entry {name!r} is a symbolic link. Links are not accepted: put the file itself "
                "into the archive.",
                "upload:symlink",
            )
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _reject(
                f"The archive entry {name!r} is a special file (device, pipe or socket).", "upload:special-file"
            )
    if info.compress_type not in _SUPPORTED_COMPRESSION:
        raise _reject(
            f"The archive entry {name!r} uses an unsupported compression method ({info.compress_type}). "
            "Use deflate (the default of `zip`).",
            "upload:unsupported-compression",
        )


def _open_zip(fileobj: IO[bytes]) -> zipfile.ZipFile:
    try:
        fileobj.seek(0)
        return zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise _reject(
            f"The upload is not a readable zip archive ({exc}). Create it with "
            "`zip -r user_code.zip src requirements.txt openapi-spec.yml`.",
            "upload:not-a-zip",
        ) from exc


def _entries(zf: zipfile.ZipFile, limits: UploadLimits) -> list[tuple[zipfile.ZipInfo, str]]:
    """Every entry with its clean name, after the checks that need no decompression."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise _reject(
            f"The archive has {len(infos)} entries; at most {limits.max_entries} are accepted.",
            "upload:too-many-entries",
        )
    entries: list[tuple[zipfile.ZipInfo, str]] = []
    seen: set[str] = set()
    for info in infos:
        name = _clean_name(info)
        _check_entry_type(info, name)
        key = name.rstrip("/")
        if key in seen and not name.endswith("/"):
            raise _reject(f"The archive holds {key!r} twice.", "upload:duplicate-entry")
        seen.add(key)
        entries.append((info, name))
    files = {name for _, name in entries if not name.endswith("/")}
    for name in files:
        parent = name.rsplit("/", 1)[0] if "/" in name else ""
        while parent:
            if parent in files:
                raise _reject(f"The archive holds {parent!r} both as a file and as a folder.", "upload:duplicate-entry")
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
    _check_required_names(files)
    return entries


def _check_required_names(files: set[str]) -> None:
    if PROGRAM_PATH not in files:
        nested = sorted(name for name in files if name.endswith("/" + PROGRAM_PATH))
        hint = (
            f" It was found at {nested[0]!r}: zip the content of your service folder, not the folder "
            "itself (`cd my-service && zip -r user_code.zip src requirements.txt openapi-spec.yml`)."
            if nested
            else " Start from the user code template: your code goes into src/program.py, which defines run()."
        )
        raise _reject(f"The archive has no {PROGRAM_PATH}.{hint}", "upload:no-program")
    if REQUIREMENTS_PATH not in files and not any(path in files for path in ENVIRONMENT_PATHS):
        raise _reject(
            "The archive has neither requirements.txt nor environment.yml at its top level. Add a "
            "requirements.txt listing the Python packages your service needs (it may be empty but for comments).",
            "upload:no-requirements",
        )


class _Counter:
    """Counts decompressed bytes against the limits while an entry streams out."""

    def __init__(self, zf: zipfile.ZipFile, limits: UploadLimits, compressed_total: int) -> None:
        self.zf = zf
        self.limits = limits
        self.total = 0
        self.compressed_total = max(compressed_total, 1)

    def entry(self, info: zipfile.ZipInfo, name: str, sink: Callable[[bytes], None]) -> int:
        written = 0
        compressed = max(info.compress_size, 1)
        try:
            with self.zf.open(info) as stream:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    written += len(chunk)
                    self.total += len(chunk)
                    self._check(name, written, compressed)
                    sink(chunk)
        except ApplicationError:
            raise
        except NotImplementedError as exc:
            raise _reject(
                f"The archive entry {name!r} uses an unsupported compression method.", "upload:unsupported-compression"
            ) from exc
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError) as exc:
            raise _reject(f"The archive entry {name!r} is damaged ({exc}).", "upload:corrupt") from exc
        return written

    def _check(self, name: str, written: int, compressed: int) -> None:
        limits = self.limits
        if self.total > limits.max_total_bytes:
            raise _reject(
                f"The archive unpacks to more than {limits.max_total_bytes // (1024 * 1024)} MB.",
                "upload:too-large-uncompressed",
                413,
            )
        if written > limits.ratio_floor_bytes and written > compressed * limits.max_ratio:
            raise _reject(
                f"The archive entry {name!r} expands more than {limits.max_ratio} times its compressed size: "
                "this looks like a zip bomb.",
                "upload:zip-bomb",
            )
        if self.total > limits.ratio_floor_bytes and self.total > self.compressed_total * limits.max_ratio:
            raise _reject(
                f"The archive expands more than {limits.max_ratio} times its compressed size: this looks like a "
                "zip bomb.",
                "upload:zip-bomb",
            )


def _walk(
    fileobj: IO[bytes],
    limits: UploadLimits,
    open_sink: Callable[[str], tuple[Callable[[bytes], None], Callable[[], None]]],
    make_dir: Callable[[str], None],
) -> ArchiveSummary:
    zf = _open_zip(fileobj)
    with zf:
        entries = _entries(zf, limits)
        counter = _Counter(zf, limits, sum(info.compress_size for info, _ in entries))
        summary = ArchiveSummary()
        wanted = {PROGRAM_PATH, REQUIREMENTS_PATH, *ENVIRONMENT_PATHS, *SPEC_PATHS}
        kept: dict[str, bytearray] = {}
        for info, name in entries:
            if name.endswith("/"):
                make_dir(name.rstrip("/"))
                continue
            write, close = open_sink(name)
            buffer = kept.setdefault(name, bytearray()) if name in wanted else None

            def sink(
                chunk: bytes,
                write: Callable[[bytes], None] = write,
                buffer: bytearray | None = buffer,
                name: str = name,
            ) -> None:
                write(chunk)
                if buffer is not None:
                    if len(buffer) + len(chunk) > MAX_TEXT_FILE_BYTES:
                        raise _reject(f"{name} is larger than 1 MB.", "upload:file-too-large")
                    buffer.extend(chunk)

            try:
                counter.entry(info, name, sink)
            finally:
                close()
            summary.files.append(name)
        summary.total_bytes = counter.total
    _check_program(bytes(kept[PROGRAM_PATH]))
    _fill_requirements(summary, {name: bytes(content) for name, content in kept.items()})
    for spec_name in SPEC_PATHS:
        if spec_name in kept:
            summary.api_spec = bytes(kept[spec_name])
            summary.api_spec_name = spec_name
            break
    return summary


def inspect_archive(fileobj: IO[bytes], *, limits: UploadLimits | None = None) -> ArchiveSummary:
    """Check an uploaded archive completely without writing anything to disk."""
    limits = limits or UploadLimits.from_settings()
    check_upload_size(fileobj, limits=limits)

    def discard(_name: str) -> tuple[Callable[[bytes], None], Callable[[], None]]:
        return (lambda _chunk: None), (lambda: None)

    return _walk(fileobj, limits, discard, lambda _name: None)


def extract_archive(fileobj: IO[bytes], dest: Path, *, limits: UploadLimits | None = None) -> ArchiveSummary:
    """Unpack a checked archive into ``dest``, which must be an existing, empty folder.

    Every check of :func:`inspect_archive` runs again (the stored archive is not trusted either);
    files are created with ``O_EXCL | O_NOFOLLOW`` and each path is verified to stay in ``dest``.
    """
    limits = limits or UploadLimits.from_settings()
    root = Path(dest).resolve(strict=True)
    if any(root.iterdir()):
        raise ValueError(f"{root} is not empty")

    def target(name: str) -> Path:
        path = (root / name).resolve()
        if root not in path.parents:
            raise _reject(f"The archive entry {name!r} points outside the archive.", "upload:zip-slip")
        return path

    def make_dir(name: str) -> None:
        target(name).mkdir(parents=True, exist_ok=True)

    def open_sink(name: str) -> tuple[Callable[[bytes], None], Callable[[], None]]:
        path = target(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)

        def write(chunk: bytes) -> None:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]

        return write, lambda: os.close(fd)

    return _walk(fileobj, limits, open_sink, make_dir)


# --- the parts the template requires ----------------------------------------------------------


def _check_program(source: bytes) -> None:
    """``src/program.py`` must parse and define ``run`` at module level (never imported)."""
    try:
        tree = ast.parse(source, filename=PROGRAM_PATH)
    except SyntaxError as exc:
        raise _reject(
            f"{PROGRAM_PATH} has a syntax error at line {exc.lineno}: {exc.msg}.", "upload:program-syntax"
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise _reject(f"{PROGRAM_PATH} cannot be read as Python source ({exc}).", "upload:program-syntax") from exc
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "run":
            return
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "run" for t in node.targets):
            return
        if isinstance(node, ast.ImportFrom | ast.Import) and any(
            (alias.asname or alias.name) == "run" for alias in node.names
        ):
            return
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "run":
            raise _reject(
                f"{PROGRAM_PATH} defines run() with `async def`; the platform calls run() as a plain function.",
                "upload:no-run",
            )
    raise _reject(
        f"{PROGRAM_PATH} does not define a function run(data=None, params=None) at module level; it is the "
        "service's entry point.",
        "upload:no-run",
    )


def _fill_requirements(summary: ArchiveSummary, kept: dict[str, bytes]) -> None:
    if REQUIREMENTS_PATH in kept:
        summary.requirements = check_requirements(kept[REQUIREMENTS_PATH], source=REQUIREMENTS_PATH)
        summary.requirements_source = REQUIREMENTS_PATH
        return
    for name in ENVIRONMENT_PATHS:
        if name in kept:
            pip, conda = requirements_from_environment(kept[name], source=name)
            summary.requirements = check_requirements(pip.encode(), source=f"{name} (pip dependencies)")
            summary.requirements_source = name
            summary.ignored_conda_packages = conda
            return


def check_requirements(raw: bytes, *, source: str = REQUIREMENTS_PATH) -> str:
    """The canonical requirements text (one plain requirement per line), refused when it is anything else.

    The file is read by pip's own rules (:mod:`runtimes.requirements`: ``str.splitlines()``, so
    form feeds and the other Unicode line separators start lines too, continuations, comments),
    and only named requirements with version specifiers and markers are accepted: no options, no
    ``-r``/``-c`` includes, no paths, URLs or VCS links. What is stored and later handed to the
    installer is the canonical list written by the platform, never the provider's bytes.
    """
    from runtimes.requirements import RequirementsError, canonical_requirements, canonical_text

    try:
        return canonical_text(canonical_requirements(raw, allowed_index_urls=settings.PLANQK_ALLOWED_INDEX_URLS))
    except RequirementsError as exc:
        message = f"{source} {exc.message}."
        if exc.line is not None and any(ch in _LINE_BREAKS for ch in raw.decode("utf-8", "replace")):
            message += (
                " Lines are counted as the installer counts them: form feeds, vertical tabs and the other "
                "Unicode line separators start a new line."
            )
        raise _reject(message, "upload:bad-requirements") from exc


#: Characters ``str.splitlines()`` breaks at besides ``\n``.
_LINE_BREAKS = "\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def requirements_from_environment(raw: bytes, *, source: str = "environment.yml") -> tuple[str, list[str]]:
    """The pip dependencies of a conda ``environment.yml`` and the conda packages left out."""
    try:
        env = yaml.safe_load(raw.decode("utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _reject(f"{source} is not valid YAML: {exc}", "upload:bad-environment") from exc
    if env is None:
        env = {}
    if not isinstance(env, dict):
        raise _reject(f"{source} must be a mapping with a 'dependencies' list.", "upload:bad-environment")
    dependencies = env.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise _reject(f"{source}: 'dependencies' must be a list.", "upload:bad-environment")
    pip: list[str] = []
    conda: list[str] = []
    for item in dependencies:
        if isinstance(item, dict):
            for value in item.get("pip") or []:
                value = str(value).strip()
                # The template's environment.yml installs requirements.txt, which is absent here.
                if value and not value.startswith(("-r ", "--requirement")):
                    pip.append(value)
        elif isinstance(item, str):
            package = re.split(r"[=<>! ]", item.strip(), maxsplit=1)[0].lower()
            if package not in ("python", "pip"):
                conda.append(item.strip())
    return "".join(f"{line}\n" for line in pip), conda


# --- API specs ---------------------------------------------------------------------------------


def _walk_spec(node: Any) -> None:
    """Bounded walk: counts expanded nodes (YAML aliases) and refuses references to elsewhere."""
    stack = [node]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_SPEC_NODES:
            raise _reject("The API spec is too large once expanded (YAML aliases).", "spec:too-large")
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                raise _reject(
                    f"The API spec refers to another document ({ref!r}); put every schema into the one file "
                    "and refer to it with '#/components/...'.",
                    "spec:external-ref",
                )
            for key in item:
                if not isinstance(key, str):
                    raise _reject(f"The API spec has a non-string key {key!r}.", "spec:invalid")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def validate_api_spec(raw: bytes | str, *, source: str = "the API spec") -> str:
    """Check an OpenAPI 3 document (YAML or JSON) and return its text.

    References to other documents are refused before the validator sees the spec, so
    validation never fetches a URL or reads a file of the server.
    """
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_SPEC_BYTES:
        raise _reject(f"{source} is larger than {MAX_SPEC_BYTES // 1024} KB.", "spec:too-large")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _reject(f"{source} is not UTF-8 text.", "spec:invalid") from exc
    if not text.strip():
        raise _reject(f"{source} is empty.", "spec:invalid")
    try:
        document = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise _reject(f"{source} is neither valid YAML nor JSON: {exc}", "spec:not-yaml") from exc
    if not isinstance(document, dict):
        raise _reject(
            f"{source} must be an OpenAPI document (a mapping with 'openapi', 'info', 'paths').", "spec:invalid"
        )
    _walk_spec(document)
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        if "swagger" in document:
            message = f"{source} is Swagger {document.get('swagger')}; upload an OpenAPI 3 document instead."
        else:
            message = f"{source} has no 'openapi: 3.x' field; it must be an OpenAPI 3 document."
        raise _reject(message, "spec:not-openapi3")
    try:
        validate(document)
    except OpenAPIValidationError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(top level)"
        # Newer validators append "Failed validating ... On instance: <the whole document>":
        # the provider needs the reason only (the first paragraph), not their spec echoed back.
        message = exc.message.split("\n\n", 1)[0].strip()
        message = message if len(message) <= 300 else message[:300] + "…"
        raise _reject(f"{source} is not valid OpenAPI: at {where}: {message}", "spec:invalid") from exc
    except Exception as exc:  # the validator can fail in other ways on odd input; never a 500
        raise _reject(f"{source} is not valid OpenAPI: {str(exc)[:300]}", "spec:invalid") from exc
    return text


def default_api_spec(*, title: str) -> str:
    """The user code template's generic API spec, titled for the service."""
    from planqk_template import template_files

    return template_files(name=title)["openapi-spec.yml"].decode("utf-8")
