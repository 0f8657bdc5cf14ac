"""The fetch half of a build: files come from the index, and no package code runs.

A build is split in two (ARCHITECTURE section 6). *Fetching* runs on the worker with its network
and only downloads: ``pip download --only-binary=:all:`` resolves from wheels, whose metadata is
static, so no setup script or build backend runs; a package that has no wheel is fetched as its
source archive by :func:`main` (pip's own index finder, nothing built), and the build
requirements it declares are read from its ``pyproject.toml`` without running it. *Installing*
and *building* run later in the sandbox, without network, from these files only.

Downloaded files go into the platform-wide cache, ``{DATA_DIR}/wheelhouse``: written only here,
by the platform, from the index, never by a build (builds see it read-only), so a requirement
set fetched once builds again without the network and no build can plant a file for another.

A wheel built from a source archive goes to ``{DATA_DIR}/built-wheels/<key>/`` (see
:func:`built_wheel_key`): the key is the source archive's sha256 and the build environment (the
interpreter and the installer), and the wheel is stored only when it came out of a build step
whose inputs were all the platform's (the fetched archive, wheels of the platform's cache, a
fresh venv, an empty /tmp and an empty output folder), so it is what any provider's build of the
same archive would make: shared across providers, and nobody can store a wheel under the key of
an archive other than the one it was built from.

``python -m runtimes.local.fetch DEST REQUIREMENT [pip options]`` downloads the newest source
archive matching REQUIREMENT into DEST and prints its path.
"""

from __future__ import annotations

import contextlib
import email.parser
import hashlib
import os
import re
import secrets
import shutil
import stat
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

from runtimes.requirements import LogicalLine, RequirementsError, canonical_line

WHEELHOUSE = "wheelhouse"
#: The platform's cache of wheels built from source archives, by :func:`built_wheel_key`.
BUILT_WHEELS = "built-wheels"
# Bump when what goes into a built wheel's key changes.
BUILT_FORMAT = "1"
#: A distribution file name as indexes serve them: no path parts, a known suffix.
_DIST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\.(whl|tar\.gz|zip)$")
_MISSING_RE = re.compile(r"satisfies the requirement (.+?) \(from versions")
# pip's fallback when an sdist has no [build-system] table (PEP 517 and pip's legacy behaviour).
DEFAULT_BUILD_REQUIRES = ["setuptools>=40.8.0"]


def missing_requirement(pip_output: list[str]) -> str | None:
    """The requirement ``pip download --only-binary=:all:`` found no wheel for, from its output."""
    for line in pip_output:
        match = _MISSING_RE.search(line)
        if match:
            return match.group(1).strip()
    return None


def publish(files: Path, wheelhouse: Path) -> list[str]:
    """Add downloaded distribution files to the platform's cache (never replacing one); returns the new names."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    os.chmod(wheelhouse, 0o755)  # noqa: S103 - builds read it (read-only), only the platform writes
    added: list[str] = []
    for path in sorted(files.iterdir()):
        if not path.is_file() or path.is_symlink() or not _DIST_RE.match(path.name):
            continue
        target = wheelhouse / path.name
        if target.exists():
            continue
        staging = wheelhouse / f".{path.name}.{os.getpid()}.tmp"
        shutil.copyfile(path, staging)
        os.chmod(staging, 0o644)
        os.replace(staging, target)
        added.append(path.name)
    return added


def built_wheel_key(sdist: Path, *, python: str, python_version: str, installer: str, indexes: str = "") -> str:
    """The cache key of the wheel built from ``sdist``: its sha256 plus the build environment.

    ``indexes`` are the index options the build's requirements named (PLANQK_ALLOWED_INDEX_URLS):
    its build requirements come from their files, so a wheel built with another index's
    setuptools is never handed to a build of the same archive that did not name that index.
    """
    digest = hashlib.sha256()
    with open(sdist, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    text = f"{BUILT_FORMAT}\n{python}\n{python_version}\n{installer}\n{indexes}\n{sdist.name}\n{digest.hexdigest()}\n"
    return hashlib.sha256(text.encode()).hexdigest()


def cached_built_wheel(folder: Path) -> Path | None:
    """The wheel stored under a key's folder, or None (also for anything but one regular file)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    if len(entries) != 1 or not entries[0].is_file(follow_symlinks=False) or not entries[0].name.endswith(".whl"):
        return None
    return Path(entries[0].path)


def regular_wheels(folder: Path) -> list[Path]:
    """The ``.whl`` files of a build step's output folder; RequirementsError for one that is not a plain file.

    The folder was writable by package code: a link there could point at a file of the worker,
    which the platform would then read and copy as the worker. Other entries (uv's .gitignore)
    are never read.
    """
    wheels = []
    for entry in os.scandir(folder):
        if not entry.name.endswith(".whl"):
            continue
        if not entry.is_file(follow_symlinks=False) or not _DIST_RE.match(entry.name):
            raise RequirementsError(f"the build left {entry.name!r}, which is not a plain wheel file")
        wheels.append(Path(entry.path))
    return wheels


def copy_regular(source: Path, target: Path) -> None:
    """Copy a file never following a link (the source was in a folder package code could write)."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as src, open(target, "wb") as out:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            raise RequirementsError(f"{source.name} is not a regular file")
        shutil.copyfileobj(src, out, 1 << 20)
    os.chmod(target, 0o644)


def store_built_wheel(wheel: Path, folder: Path) -> bool:
    """Store a checked wheel under its key's folder (the first one stored wins); True when stored."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(folder.parent, 0o755)  # noqa: S103 - read by the platform only; never mounted into a build
    if folder.exists():
        return False
    staging = folder.parent / f".{folder.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    staging.mkdir(mode=0o755)
    try:
        copy_regular(wheel, staging / wheel.name)
        os.rename(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        return False
    return True


def build_requirements(sdist: Path) -> list[str]:
    """``[build-system] requires`` of a source archive, read without running it, as canonical requirements."""
    data = _member(sdist, "pyproject.toml")
    if data is None:
        return list(DEFAULT_BUILD_REQUIRES)
    try:
        table = tomllib.loads(data.decode("utf-8")).get("build-system", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RequirementsError(f"{sdist.name}: pyproject.toml cannot be read ({exc})") from None
    requires = table.get("requires", DEFAULT_BUILD_REQUIRES) if isinstance(table, dict) else DEFAULT_BUILD_REQUIRES
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise RequirementsError(f"{sdist.name}: [build-system] requires is not a list of strings")
    return [canonical_line(LogicalLine(0, r.strip())) for r in requires if r.strip()]


def _member(sdist: Path, name: str) -> bytes | None:
    """The top-level file ``name`` of a source archive (``<project>-<version>/name``), size-capped."""
    with contextlib.suppress(tarfile.TarError, zipfile.BadZipFile, OSError):
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                for info in zf.infolist():
                    top = info.filename.count("/") == 1 and info.filename.endswith("/" + name)
                    if top and info.file_size < 1 << 20:
                        return zf.read(info)
            return None
        with tarfile.open(sdist, "r:*") as tf:
            for member in tf:
                top = member.name.count("/") == 1 and member.name.endswith("/" + name)
                if member.isfile() and top and member.size < 1 << 20:
                    fh = tf.extractfile(member)
                    return fh.read() if fh else None
    return None


def check_built_wheel(wheel: Path, expected_name: str) -> list[str]:
    """A wheel built from source by package code: its name must be the package's, its requirements plain.

    Its ``Requires-Dist`` goes to ``pip download`` next, so a direct URL there would make the
    fetch reach wherever the package code chose.
    """
    from packaging.utils import canonicalize_name, parse_wheel_filename

    name = parse_wheel_filename(wheel.name)[0]
    if canonicalize_name(name) != canonicalize_name(expected_name):
        raise RequirementsError(f"building {expected_name} produced a wheel of another project ({wheel.name})")
    with zipfile.ZipFile(wheel) as zf:
        metadata = next((n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
        if metadata is None:
            raise RequirementsError(f"the wheel built from {expected_name} has no metadata")
        message = email.parser.BytesParser().parsebytes(zf.read(metadata))
    requires = []
    for value in message.get_all("Requires-Dist") or []:
        requires.append(canonical_line(LogicalLine(0, " ".join(str(value).split()))))
    return requires


def main(argv: list[str]) -> int:
    """Download the newest source archive of ``argv[1]`` into ``argv[0]`` (pip options follow)."""
    from pip._internal.commands.download import DownloadCommand

    # pip's own copy of packaging: its finder compares its own Version objects.
    from pip._vendor.packaging.requirements import Requirement

    dest, requirement, *pip_args = argv
    req = Requirement(requirement)
    command = DownloadCommand("download", "fetch one source archive")
    options, _ = command.parse_args([*pip_args, "--no-binary", ":all:", "--no-deps", "-d", dest, requirement])
    with command.main_context():
        session = command.get_default_session(options)
        finder = command._build_package_finder(options=options, session=session)
        best = finder.find_best_candidate(req.name, req.specifier).best_candidate
        if best is None:
            print(f"ERROR: no source archive of {requirement} on the index", file=sys.stderr)
            return 1
        link = best.link
        filename = link.filename
        if not _DIST_RE.match(filename) or filename.endswith(".whl"):
            print(f"ERROR: unexpected file name {filename!r}", file=sys.stderr)
            return 1
        target = Path(dest) / filename
        if link.is_file:
            shutil.copyfile(link.file_path, target)
        else:
            with session.get(link.url_without_fragment, stream=True) as response, open(target, "wb") as out:
                response.raise_for_status()
                for chunk in response.iter_content(1 << 16):
                    out.write(chunk)
        if link.hash_name and link.hash:
            digest = hashlib.new(link.hash_name, target.read_bytes()).hexdigest()
            if digest != link.hash:
                target.unlink()
                print(f"ERROR: {filename} does not match the index's {link.hash_name} hash", file=sys.stderr)
                return 1
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
