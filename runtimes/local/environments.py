"""Building a Python environment: one virtual environment per requirements hash.

``{DATA_DIR}/envs/<sha256>`` is created with ``python -m venv`` and ``pip install -r`` (inside
the build sandbox of :mod:`runtimes.local.sandbox`). A file lock makes two builds of the same
hash build once; a marker written after success tells a finished environment from a half-built
one, and its mtime says when a build last used it, for garbage collection by age. The user code
(plus a copy of the runner, ``planqk_runtime``) goes to ``{DATA_DIR}/builds/<version_id>/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import queue
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runtimes._common import READABLE_DIR, pip_error, rmtree
from runtimes.base import BuildError, BuildSpec, CancelFunc, LogFunc, RuntimeUnavailable, _never
from runtimes.local import fetch
from runtimes.local import supervisor as sup
from runtimes.local.handles import LocalConfig
from runtimes.local.locks import LOCK_FILE, LOCK_HEADER, Lock, LockError, parse_lock
from runtimes.local.sandbox import SANDBOX_TMP, Sandbox
from runtimes.requirements import (
    Indexes,
    RequirementsError,
    canonical_requirements,
    canonical_text,
    split_indexes,
)

logger = logging.getLogger(__name__)

# Bump when the layout of an environment changes, so old ones are rebuilt instead of reused.
ENV_FORMAT = "2"
READY_MARKER = ".planqk-ready"
UV_CACHE = "uv-cache"
UV_COMPILED = "uv-cache-compiled"

# Environment variables a build's pip may see: its configuration, proxies and CA settings.
# Everything else of the worker (database URLs, secret keys) stays out of user-controlled code.
_PIP_ENV_PREFIXES = ("PIP_",)
_PIP_ENV_NAMES = (
    "HOME",
    "LANG",
    "LC_ALL",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
)


def _load_prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


# Looked up now: between fork and exec a child must not import anything (another thread may
# have held the import lock at the fork).
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In a child between fork and exec: SIGTERM when the thread that started it ends (Linux).

    Elsewhere the build's own cleanup still kills it when the worker stops normally.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


# Stands between the worker and a build step. The kernel's parent-death signal is cleared when a
# process changes its credentials, which bubblewrap does as root (it drops its capabilities), so
# it cannot be set on bubblewrap itself: it is set on this process, which never changes its own,
# and which then kills the step (bubblewrap's --die-with-parent takes the sandbox down with it).
_WATCHDOG = (
    "import os, signal, subprocess, sys\n"
    "step = subprocess.Popen(sys.argv[1:])\n"
    "def stop(*_):\n"
    "    os.killpg(0, signal.SIGKILL)\n"  # the step's whole tree, and this process
    "    os._exit(143)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "signal.signal(signal.SIGINT, stop)\n"
    "sys.exit(step.wait())\n"
)


def python_info_of(python: str) -> dict[str, str]:
    code = "import json, sys; print(json.dumps({'version': sys.version.split()[0], 'prefix': sys.base_prefix}))"
    try:
        out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeUnavailable(f"the Python interpreter {python!r} does not run: {exc}") from exc
    return json.loads(out.stdout)


def normalized_requirements(requirements: str, allowed_index_urls: tuple[str, ...] = ()) -> str:
    """The canonical requirements (what is installed) as the environment's key; refused text keys as itself."""
    try:
        return canonical_text(canonical_requirements(requirements, allowed_index_urls=allowed_index_urls))
    except RequirementsError:
        return "\n".join(line.rstrip() for line in requirements.replace("\r\n", "\n").split("\n")).strip() + "\n"


def copy_tree(source: Path, target: Path) -> list[str]:
    """Copy regular files and folders only; links and special files are skipped (and returned).

    Following a link would copy whatever it points to on the worker, as the worker.
    """
    skipped: list[str] = []
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, READABLE_DIR)
    for entry in os.scandir(source):
        if entry.name == "__pycache__":
            continue
        dest = target / entry.name
        if entry.is_symlink():
            skipped.append(entry.path)
        elif entry.is_dir(follow_symlinks=False):
            skipped.extend(copy_tree(Path(entry.path), dest))
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(entry.path, dest, follow_symlinks=False)
            os.chmod(dest, READABLE_DIR if os.stat(entry.path).st_mode & stat.S_IXUSR else 0o644)
        else:
            skipped.append(entry.path)
    return skipped


RUNNER_PACKAGE = "planqk_runtime"
#: A build's environment folder name: the sha256 of :meth:`Environments.env_key`.
_ENV_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
#: The job error code when a host cannot make a build's environment or code its own.
BUILD_UNAVAILABLE = "platform:build-unavailable"


def check_env_key(value: str) -> str:
    """``value`` if it names an environment folder (64 hex digits), else ``ValueError``."""
    if not isinstance(value, str) or not _ENV_KEY_RE.match(value):
        raise ValueError(f"invalid environment key: {value!r}")
    return value


def tree_digest(folder: Path, *, exclude: frozenset[str] = frozenset()) -> str:
    """A digest of the regular files under ``folder`` (names and contents; ``__pycache__`` skipped).

    "" for a folder that is missing. Links count by their target's text, never followed.
    ``exclude``: top-level names left out (the runner's copy in a code folder).
    """
    if not folder.is_dir() or folder.is_symlink():
        return ""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not (root == str(folder) and d in exclude))
        if root == str(folder):
            files = [name for name in files if name not in exclude]
        for name in sorted(files):
            path = Path(root, name)
            relative = os.path.relpath(path, folder)
            if path.is_symlink():
                digest.update(f"L {relative} {os.readlink(path)}\0".encode())
            elif path.is_file():
                digest.update(f"F {relative}\0".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _load_renameat2() -> Any:
    try:
        import ctypes

        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a libc without it
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return func


_RENAMEAT2 = _load_renameat2()
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> None:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``), so no reader sees neither.

    Where the kernel or libc cannot, two renames (a reader may find ``b`` missing for a moment).
    """
    if _RENAMEAT2 is not None:
        import ctypes

        if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        errno = ctypes.get_errno()
        if errno not in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: fall back below
            raise OSError(errno, os.strerror(errno), str(b))
    aside = b.with_name(f".{b.name}.{secrets.token_hex(4)}.aside")
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


class Environments:
    """The environments and code folders of one data folder."""

    def __init__(self, config: LocalConfig, data_dir: Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self.sandbox = Sandbox(config, lambda: self.python_info()["prefix"])
        self._python_info: dict[str, str] | None = None
        self._runner_digest: tuple[Path, str] | None = None

    @property
    def envs_dir(self) -> Path:
        return self.data_dir / "envs"

    @property
    def builds_dir(self) -> Path:
        return self.data_dir / "builds"

    def python_info(self) -> dict[str, str]:
        """Version and prefix of the interpreter that environments are built from."""
        if self._python_info is None:
            self._python_info = python_info_of(self.config.python)
        return self._python_info

    def env_key(self, requirements: str) -> str:
        """The hash naming the environment for ``requirements`` on this runtime's Python."""
        info = self.python_info()
        text = f"{ENV_FORMAT}\n{os.path.realpath(self.config.python)}\n{info['version']}\n"
        text += normalized_requirements(requirements, self.config.allowed_index_urls)
        return hashlib.sha256(text.encode()).hexdigest()

    @contextlib.contextmanager
    def lock(self, key: str, log: LogFunc, should_cancel: CancelFunc) -> Iterator[None]:
        self.envs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.envs_dir / f"{key}.lock", "a+") as fh:
            told = False
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not told:
                        log("another build is creating this environment; waiting for it")
                        told = True
                    if should_cancel():
                        raise BuildError("build cancelled", user_error=False, code="build:cancelled") from None
                    time.sleep(0.5)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def stream(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        log: LogFunc,
        should_cancel: CancelFunc,
        deadline: float,
        cwd: Path | None = None,
    ) -> tuple[int, list[str]]:
        """Run a build step, sending its output lines to ``log``; returns (exit code, last lines)."""
        # Checked before each step as well as while it prints: quiet steps (an install from the
        # cache) can end before a line arrives, and a cancelled build must not go on to the next.
        if should_cancel():
            raise BuildError("build cancelled", user_error=False, code="build:cancelled")
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            # Its own session, so a cancel kills pip's whole tree; and ended with the worker (see
            # _WATCHDOG), so a worker that is shut down or dies mid-build leaves no pip behind.
            start_new_session=True,
            preexec_fn=_die_with_parent,
            umask=0o022,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def reader() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
            lines.put(None)

        threading.Thread(target=reader, daemon=True).start()
        tail: list[str] = []
        try:
            while True:
                try:
                    line = lines.get(timeout=0.5)
                except queue.Empty:
                    line = ""
                else:
                    if line is None:
                        break
                    log(line)
                    tail.append(line)
                    del tail[:-300]
                if should_cancel():
                    raise BuildError("build cancelled", user_error=False, code="build:cancelled")
                if time.monotonic() > deadline:
                    raise BuildError(
                        f"the build took longer than {self.config.build_timeout_seconds} seconds",
                        user_error=True,
                        code="build:user:time-out",
                    )
            return proc.wait(), tail
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def pip_env(self, env_dir: Path, *, sandboxed: bool = False) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k.startswith(_PIP_ENV_PREFIXES) or k in _PIP_ENV_NAMES}
        if sandboxed:
            # The worker's home is not in the sandbox: pip's cache goes to the build's own /tmp,
            # never shared, so one build cannot plant a wheel that another one installs.
            env["HOME"] = SANDBOX_TMP
        env.update(
            PATH=f"{env_dir / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            VIRTUAL_ENV=str(env_dir),
            PYTHONUNBUFFERED="1",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_NO_INPUT="1",
            PIP_PROGRESS_BAR="off",
        )
        env.setdefault("LANG", "C.UTF-8")
        if self.config.pip_index_url:
            env["PIP_INDEX_URL"] = self.config.pip_index_url
        if self.config.pip_extra_index_url:
            env["PIP_EXTRA_INDEX_URL"] = self.config.pip_extra_index_url
        if self.config.ca_bundle and os.path.exists(self.config.ca_bundle):
            env["PIP_CERT"] = self.config.ca_bundle
        return env

    @property
    def wheelhouse(self) -> Path:
        """The platform-wide cache of fetched files: filled by the fetch only, read-only to builds."""
        return self.data_dir / fetch.WHEELHOUSE

    @property
    def uv_cache(self) -> Path:
        """uv's cache of unpacked wheels of the wheelhouse (with their bytecode), shared by every build.

        Only steps that run no package code see it (uv installing wheels of the wheelhouse,
        compileall): uv cannot use a read-only cache, so it is never mounted into a step that
        runs package code (building from source), which has a cache of its own in its /tmp.
        """
        return self.data_dir / UV_CACHE

    @property
    def uv_compiled(self) -> Path:
        """One empty file per entry of :attr:`uv_cache` whose bytecode the platform compiled."""
        return self.data_dir / UV_COMPILED

    @property
    def built_wheels(self) -> Path:
        """The platform's cache of wheels built from source archives (:func:`fetch.built_wheel_key`)."""
        return self.data_dir / fetch.BUILT_WHEELS

    def installer(self) -> str:
        if self.config.installer not in ("uv", "pip"):
            raise RuntimeUnavailable(f"PLANQK_INSTALLER must be uv or pip, not {self.config.installer!r}")
        return self.config.installer

    def uv_binary(self) -> str:
        if self.config.uv:
            return self.config.uv
        try:
            from uv import find_uv_bin
        except ImportError as exc:
            raise RuntimeUnavailable("the uv package is not installed; install it or set PLANQK_INSTALLER=pip") from exc
        return os.path.realpath(find_uv_bin())

    def checked_requirements(self, requirements: str) -> list[str]:
        """The canonical lines of ``requirements`` under this runtime's allow-list of indexes, or BuildError.

        Checked before an environment is reused too: its key is the text, and an index the
        operator no longer allows must not keep building from an environment made with it.
        """
        try:
            return canonical_requirements(requirements, allowed_index_urls=self.config.allowed_index_urls)
        except RequirementsError as exc:
            raise BuildError(
                f"requirements.txt {exc.message}", user_error=True, code="build:user:requirements"
            ) from None

    def create(self, env_dir: Path, requirements: str, *, log: LogFunc, should_cancel: CancelFunc) -> None:
        """Build the environment for ``requirements`` in two halves: fetch (network, no package code), install.

        Installing and building source archives run in the build sandbox without network, from
        the fetched files only. Without a sandbox only wheels are installed (installing a wheel
        runs none of its code); a package that must be built from source is refused.
        """
        deadline = time.monotonic() + self.config.build_timeout_seconds
        lines = self.checked_requirements(requirements)
        installer = self.installer()
        rmtree(env_dir)  # a half-built leftover of a crashed build
        work = env_dir.with_name(f".{env_dir.name}.work")
        rmtree(work)
        indexes = split_indexes(lines)
        wanted = indexes.requirements
        run = _Steps(self, env_dir, work, log=log, should_cancel=should_cancel, deadline=deadline, indexes=indexes)
        try:
            env_dir.mkdir(mode=0o755)
            for sub in ("tmp", "fetch", "built"):
                (work / sub).mkdir(parents=True, mode=0o755)
            os.chmod(work, 0o700)
            if run.sandboxed:
                log("build sandbox: bubblewrap (no network; writable only the environment and a private /tmp)")
            else:
                log(f"build sandbox: none ({self.sandbox.mode()[1]}): only wheels are installed, nothing is built")
            (work / "requirements.txt").write_text(canonical_text(wanted))
            if indexes.options:
                log(f"packages come from the index(es) requirements.txt names: {' '.join(indexes.options)}")
            with run.phase("environment"):
                run.venv()
            (env_dir / "requirements.txt").write_text(canonical_text(wanted))
            if wanted:
                with run.phase("install from the platform's cache"):
                    cached = run.install(offline_cache_only=True, quiet=True)
                    log("every package was in the cache" if cached else "not every package is in the cache yet")
                if not cached:
                    with run.phase("fetch"):
                        run.fetch(wanted)
                    with run.phase("install"):
                        if not run.install():
                            raise BuildError(
                                f"installing the requirements failed:\n{pip_error(run.tail)}",
                                user_error=True,
                                code="build:user:requirements",
                            )
            else:
                log("requirements.txt lists no packages")
            with run.phase("lock"):
                run.lock([run.wheelhouse, run.built])
            sup.write_json_atomic(
                env_dir / READY_MARKER,
                {"created_at": time.time(), "python": self.python_info()["version"], "installer": installer},
            )
        except BaseException:
            _remove_for_sure(env_dir)
            raise
        finally:
            rmtree(work)

    def read_lock(self, env_dir: Path) -> str:
        """The lock an environment was built or materialised from ("" when it has none)."""
        try:
            return (env_dir / LOCK_FILE).read_text()
        except (OSError, UnicodeDecodeError):
            return ""

    def lock_existing(self, env_dir: Path, requirements: str, *, log: LogFunc) -> None:
        """Lock an environment built before builds were locked (call it under the environment's lock).

        Its files came from the wheelhouse of its indexes or the platform's wheels built from source.
        """
        if self.read_lock(env_dir) or self.installer() != "uv":
            return
        indexes = split_indexes(self.checked_requirements(requirements))
        work = env_dir.with_name(f".{env_dir.name}.lock-work")
        rmtree(work)
        work.mkdir(mode=0o700)
        (work / "tmp").mkdir(mode=0o755)
        deadline = time.monotonic() + 300
        run = _Steps(self, env_dir, work, log=log, should_cancel=_never, deadline=deadline, indexes=indexes)
        try:
            built = sorted(path for path in self.built_wheels.glob("*") if path.is_dir() and not path.is_symlink())
            run.lock([run.wheelhouse, *built])
        finally:
            rmtree(work)

    def materialise(
        self, key: str, lock_text: str, *, log: LogFunc, should_stop: CancelFunc = _never
    ) -> tuple[Path, bool]:
        """This host's environment holding exactly ``lock_text``: ``(folder, created now)``.

        ``envs/<key>`` when it holds that lock (it was built or materialised here). When it holds
        another one (the same requirements resolved elsewhere or on another day, possibly in use by
        running executions) the lock gets a folder of its own, keyed by ``key`` and the lock.
        Otherwise it is created from the lock, in the build sandbox, under the environment's file
        lock: a second job on this host waits and reuses it. Raises :class:`RuntimeUnavailable`
        (code :data:`BUILD_UNAVAILABLE`) when it cannot be, :class:`LockError` for a lock that
        is not one the platform wrote.
        """
        check_env_key(key)
        lock = parse_lock(lock_text, allowed_index_urls=self.config.allowed_index_urls)
        for folder_key in (key, hashlib.sha256(f"lock\n{key}\n{lock.digest}\n".encode()).hexdigest()):
            env_dir = self.envs_dir / folder_key
            try:
                with self.lock(folder_key, log, should_stop):
                    if (env_dir / READY_MARKER).exists():
                        if self.read_lock(env_dir) != lock.text:
                            continue
                        os.utime(env_dir / READY_MARKER)  # in use: spared by garbage collection by age
                        return env_dir, False
                    self.create_from_lock(env_dir, lock, log=log, should_stop=should_stop)
                    return env_dir, True
            except BuildError as exc:
                raise RuntimeUnavailable(
                    f"the build's environment could not be materialised on this host: {exc.message}",
                    code=BUILD_UNAVAILABLE,
                ) from None
        raise RuntimeUnavailable(f"environment {key[:12]}: two folders hold other locks", code=BUILD_UNAVAILABLE)

    def create_from_lock(self, env_dir: Path, lock: Lock, *, log: LogFunc, should_stop: CancelFunc = _never) -> None:
        """Install exactly the pins of ``lock`` (``--require-hashes --no-deps``), wheels only.

        From this host's wheelhouse first, without network; what it lacks is downloaded (by
        hash, from the lock's indexes or the platform's) and installed again. Same sandbox and
        same steps as :meth:`create`; a hash that does not match fails it.
        """
        deadline = time.monotonic() + self.config.build_timeout_seconds
        rmtree(env_dir)
        work = env_dir.with_name(f".{env_dir.name}.work")
        rmtree(work)
        run = _Steps(self, env_dir, work, log=log, should_cancel=should_stop, deadline=deadline, indexes=lock.indexes)
        pins = canonical_text(lock.indexes.requirements)
        try:
            env_dir.mkdir(mode=0o755)
            for sub in ("tmp", "fetch", "built"):
                (work / sub).mkdir(parents=True, mode=0o755)
            os.chmod(work, 0o700)
            (work / "requirements.txt").write_text(pins)
            run.venv()
            (env_dir / "requirements.txt").write_text(pins)
            if lock.indexes.requirements and not run.install_locked():
                code, tail = run.fetch_locked()
                if code != 0:
                    raise BuildError(f"fetching the locked files failed:\n{pip_error(tail)}", user_error=False)
                if not run.install_locked():
                    raise BuildError(f"installing the lock failed:\n{pip_error(run.tail)}", user_error=False)
            (env_dir / LOCK_FILE).write_text(lock.text)
            sup.write_json_atomic(
                env_dir / READY_MARKER,
                {"created_at": time.time(), "python": self.python_info()["version"], "from_lock": lock.digest},
            )
        except BaseException:
            _remove_for_sure(env_dir)
            raise
        finally:
            rmtree(work)

    def materialise_code(
        self, version_id: str, digest: str, unpack: Callable[[Path], None] | None, *, log: LogFunc
    ) -> tuple[Path, bool]:
        """This host's code folder of a version: ``(builds/<version_id>, created now)``.

        Made from the version's stored archive (``unpack``) when missing or not the build's code
        (``digest``, the runner left out); under a file lock, so two jobs unpack it once.
        """
        final = self.builds_dir / version_id
        if final.is_dir() and (not digest or self.has_code(final, digest)):
            return final, False
        if not digest or unpack is None:
            raise RuntimeUnavailable(
                f"the build's code folder is not on this host and cannot be made here ({final.name}); "
                "build the version again",
                code=BUILD_UNAVAILABLE,
            )
        self.builds_dir.mkdir(parents=True, exist_ok=True)
        with open(self.builds_dir / f".{version_id}.code.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                if final.is_dir() and self.has_code(final, digest):
                    return final, False
                source = self.builds_dir / f".{version_id}.{secrets.token_hex(4)}.src"
                try:
                    source.mkdir(mode=0o700)
                    try:
                        unpack(source)
                    except Exception as exc:  # the archive is gone, unreadable or refused by the checks
                        raise RuntimeUnavailable(
                            f"the version's code could not be unpacked here: {exc}", code=BUILD_UNAVAILABLE
                        ) from None
                    self.install_code(BuildSpec(version_id, source, ""), log, expect_digest=digest)
                finally:
                    rmtree(source)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return final, True

    def code_digest(self, build_dir: Path) -> str:
        """The digest of a code folder without the runner (which every start refreshes)."""
        return tree_digest(build_dir, exclude=frozenset({RUNNER_PACKAGE}))

    def _digest_file(self, build_dir: Path) -> Path:
        return build_dir.with_name(f".{build_dir.name}.code-digest")

    def has_code(self, build_dir: Path, digest: str) -> bool:
        """Whether the code folder holds the code of ``digest``; hashed once, then read from a file of ours."""
        try:
            known = self._digest_file(build_dir).read_text()
        except OSError:
            known = self.code_digest(build_dir)
            self._digest_file(build_dir).write_text(known)
        return known == digest

    def install_code(self, spec: BuildSpec, log: LogFunc, *, expect_digest: str = "") -> Path:
        """Copy the user code and the runner to ``builds/<version_id>``, replacing an older copy.

        With ``expect_digest`` the copy must be that code (:meth:`code_digest`) or nothing changes.
        """
        self.builds_dir.mkdir(parents=True, exist_ok=True)
        final = self.builds_dir / spec.version_id
        staging = self.builds_dir / f".{spec.version_id}.{secrets.token_hex(4)}.tmp"
        try:
            skipped = copy_tree(Path(spec.source_dir), staging)
            for path in skipped:
                log(f"skipped {os.path.relpath(path, spec.source_dir)}: not a regular file or folder")
            # The platform's runner wins over a folder of that name in the upload.
            rmtree(staging / RUNNER_PACKAGE)
            if expect_digest and self.code_digest(staging) != expect_digest:  # before anything is replaced
                raise RuntimeUnavailable(
                    "the version's stored archive is not the code it was built from (its digest differs)",
                    code=BUILD_UNAVAILABLE,
                )
            copy_tree(self.runner_dir(), staging / RUNNER_PACKAGE)
            digest = self.code_digest(staging)
            old = self.builds_dir / f".{spec.version_id}.{secrets.token_hex(4)}.old"
            self._digest_file(final).unlink(missing_ok=True)
            if final.exists():
                final.rename(old)
            staging.rename(final)
            self._digest_file(final).write_text(digest)
            rmtree(old)
        except BaseException:
            rmtree(staging)
            raise
        return final

    def runner_dir(self) -> Path:
        """The platform's current runner package (what builds copy and executions must run)."""
        if self.config.runner_dir:
            return Path(self.config.runner_dir)
        found = importlib.util.find_spec(RUNNER_PACKAGE)
        if found is None or not found.submodule_search_locations:
            raise BuildError("the runner package planqk_runtime is not installed", user_error=False)
        return Path(next(iter(found.submodule_search_locations)))

    def runner_digest(self) -> str:
        """The digest of the current runner, computed once per process (an upgrade restarts workers)."""
        runner = self.runner_dir()
        if self._runner_digest is None or self._runner_digest[0] != runner:
            self._runner_digest = (runner, tree_digest(runner))
        return self._runner_digest[1]

    def refresh_runner(self, build_dir: Path) -> bool:
        """Make the build's copy of the runner the platform's current one; True when it was replaced.

        A build carries the runner of the day it was built. A version built before an upgrade
        (before the result channel, say) would otherwise run an old runner the supervisor no
        longer understands. The new copy is made beside the old one and swapped in with one
        rename, under a lock, so a concurrent start sees the old copy or the new one, never a half.
        """
        want = self.runner_digest()
        copy = build_dir / RUNNER_PACKAGE
        if tree_digest(copy) == want:
            return False
        with open(build_dir.with_name(f".{build_dir.name}.runner.lock"), "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                if tree_digest(copy) == want:  # another worker refreshed it meanwhile
                    return False
                staging = build_dir / f".{RUNNER_PACKAGE}.{secrets.token_hex(4)}.new"
                try:
                    copy_tree(self.runner_dir(), staging)
                    if copy.exists() or copy.is_symlink():
                        exchange(staging, copy)
                    else:
                        os.rename(staging, copy)
                finally:
                    rmtree(staging)  # the old copy, after the exchange
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        logger.info("build %s: its copy of the runner was older than the platform's; replaced", build_dir.name)
        return True

    def ensure(self, requirements: str, *, log: LogFunc, should_cancel: CancelFunc) -> tuple[str, Path, bool]:
        """The environment for ``requirements``, built unless a finished one exists: (hash, folder, reused)."""
        self.checked_requirements(requirements)
        key = self.env_key(requirements)
        env_dir = self.envs_dir / key
        log(f"environment {key[:12]} (Python {self.python_info()['version']})")
        with self.lock(key, log, should_cancel):
            reused = (env_dir / READY_MARKER).exists()
            if reused:
                log("requirements unchanged: reusing the environment")
                # Its mtime says when it was last used, for garbage collection by age.
                os.utime(env_dir / READY_MARKER)
                self.lock_existing(env_dir, requirements, log=log)
            else:
                if should_cancel():
                    raise BuildError("build cancelled", user_error=False, code="build:cancelled")
                self.create(env_dir, requirements, log=log, should_cancel=should_cancel)
        return key, env_dir, reused

    def garbage_collect(self, keep: set[str], *, idle_seconds: float | None = None) -> list[str]:
        """Delete environments whose hash is not in ``keep``; returns the deleted hashes.

        With ``idle_seconds``, only those no build used for that long (the ready marker's mtime;
        the folder's for a half-built one). An environment a build is creating or reusing right
        now (its lock is held) is left alone.
        """
        removed: list[str] = []
        if not self.envs_dir.exists():
            return removed
        idle_before = None if idle_seconds is None else time.time() - idle_seconds
        for entry in sorted(self.envs_dir.iterdir()):
            if not entry.is_dir() or entry.name in keep or len(entry.name) != 64:
                continue
            with open(self.envs_dir / f"{entry.name}.lock", "a+") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                if idle_before is not None and _last_used(entry) > idle_before:
                    continue
                rmtree(entry)
                (self.envs_dir / f"{entry.name}.lock").unlink(missing_ok=True)
                removed.append(entry.name)
        return removed


def _pins_of_freeze(lines: list[str]) -> list[str] | None:
    """``name==version`` of each line of ``uv pip freeze``; a wheel installed from a file
    (``name @ file:///.../name-1.0-py3-none-any.whl``, one built from source) by its file name.
    None when a line is neither (an editable or a folder: nothing another host could install)."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    pins = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if " @ " in line:
            try:
                name, version, _build, _tags = parse_wheel_filename(line.rsplit("/", 1)[-1])
            except InvalidWheelFilename:
                return None
            pins.append(f"{canonicalize_name(name)}=={version}")
        elif re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+$", line):
            pins.append(line)
        else:
            return None
    return sorted(pins)


def _remove_for_sure(path: Path, *, seconds: float = 10.0) -> None:
    """Remove a half-built environment, also while a killed step's last processes still write into it.

    The sandbox of a step killed at a cancel or a timeout ends a moment after the kill; a single
    pass could leave files those processes wrote meanwhile, and a folder to mistake for an environment.
    """
    deadline = time.monotonic() + seconds
    while True:
        rmtree(path)
        if not path.exists() or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def _last_used(env_dir: Path) -> float:
    for path in (env_dir / READY_MARKER, env_dir):
        with contextlib.suppress(OSError):
            return path.stat().st_mtime
    return 0.0


class _Steps:
    """The steps of one environment's creation, sharing its folders, deadline and log."""

    def __init__(
        self,
        environments: Environments,
        env_dir: Path,
        work: Path,
        *,
        log: LogFunc,
        should_cancel: CancelFunc,
        deadline: float,
        indexes: Indexes | None = None,
    ) -> None:
        self.environments = environments
        self.indexes = indexes or Indexes([])
        # Files of an index other than the platform's default go to a wheelhouse of their own: a
        # build that did not name that index never installs them (a package of the same name there
        # is not the same package).
        self.wheelhouse = environments.wheelhouse
        if self.indexes.options:
            key = hashlib.sha256("\n".join(self.indexes.options).encode()).hexdigest()[:32]
            self.wheelhouse = environments.data_dir / f"{fetch.WHEELHOUSE}-by-index" / key
        self.env_dir = env_dir
        self.work = work
        self.log = log
        self.should_cancel = should_cancel
        self.deadline = deadline
        self.sandboxed = environments.sandbox.mode()[0] == "bwrap"
        self.tail: list[str] = []
        self.built_names: set[str] = set()
        self._fresh = 0

    def venv(self) -> None:
        """Create the empty virtual environment (in the sandbox)."""
        env_dir = self.env_dir
        if self.environments.installer() == "uv":
            argv = [self.environments.uv_binary(), "venv", "--no-config", "--offline"]
            argv += ["--python", self.environments.config.python, str(env_dir)]
            code, tail = self.sandboxed_step(argv, log_as=f"$ uv venv {env_dir.name}")
        else:
            argv = [self.environments.config.python, "-m", "venv", str(env_dir)]
            code, tail = self.sandboxed_step(argv, log_as=f"$ python -m venv {env_dir.name}")
        if code != 0:
            raise BuildError(
                f"creating the virtual environment failed:\n{pip_error(tail)}",
                user_error=False,
                code="build:platform:venv",
            )

    def lock(self, find_links: list[Path]) -> str:
        """Write the environment's lock: what uv says it holds, each pinned with its files' hashes.

        ``uv pip freeze`` lists the environment's site-packages (queried through the platform's
        interpreter, so none of the environment's code runs), ``uv pip compile --generate-hashes``
        pins that set offline over ``find_links`` (the wheels it was installed from). "" (and a
        line in the log) when it cannot be locked: then only this host can run its builds.
        """
        env = self.environments
        if env.installer() != "uv":
            self.log("not locked (PLANQK_INSTALLER=pip): only this host can run builds of this environment")
            return ""
        uv = env.uv_binary()
        version = ".".join(env.python_info()["version"].split(".")[:2])
        site = self.env_dir / "lib" / f"python{version}" / "site-packages"
        frozen: list[str] = []
        argv = [uv, "-q", "pip", "freeze", "--no-config", "--offline", "--python", env.config.python]
        code, _ = self.sandboxed_step(
            [*argv, "--path", str(site)], log_as="", quiet=True, plain=True, tmp=self.fresh("tmp"), capture=frozen
        )
        pins = _pins_of_freeze(frozen) if code == 0 else None
        from_source = sorted({line.split(" @ ", 1)[0].strip() for line in frozen if " @ " in line})
        if pins and from_source:
            # Their wheels exist only in this host's cache of wheels built from source: no index
            # serves a file of their hash, so another host cannot materialise this environment.
            self.log(
                f"built from source here: {', '.join(from_source)}; other hosts cannot make this environment "
                "from its lock (their jobs of it fail with platform:build-unavailable)"
            )
        text: str | None = None
        if pins == []:
            text = LOCK_HEADER
        elif pins is not None:
            out = self.fresh("lock")
            (out / "frozen.txt").write_text(canonical_text(pins))
            argv = [uv, "-q", "pip", "compile", "--no-config", "--offline", "--no-index", "--no-build"]
            argv += ["--generate-hashes", "--no-header", "--no-annotate", "--python", env.config.python]
            for folder in find_links:
                argv += ["--find-links", str(folder)]
            argv += ["-o", str(out / "lock.txt"), str(out / "frozen.txt")]
            code, _ = self.sandboxed_step(argv, log_as="", quiet=True, plain=True, tmp=self.fresh("tmp"))
            if code == 0:
                options = "".join(f"{line}\n" for line in self._index_lines())
                text = LOCK_HEADER + options + (out / "lock.txt").read_text()
        lock = None
        if text is not None:
            try:
                lock = parse_lock(text, allowed_index_urls=env.config.allowed_index_urls)
            except LockError as exc:
                logger.warning("environment %s: uv's lock is refused: %s", self.env_dir.name, exc)
        if lock is None:
            self.log("the environment could not be locked: only this host can run builds of it")
            return ""
        (self.env_dir / LOCK_FILE).write_text(lock.text)
        self.log(f"locked: {len(lock.indexes.requirements)} distributions pinned with their hashes")
        return lock.text

    def _index_lines(self) -> list[str]:
        lines = [f"--index-url {self.indexes.index_url}"] if self.indexes.index_url else []
        return lines + [f"--extra-index-url {url}" for url in self.indexes.extra_index_urls]

    def install_locked(self) -> bool:
        """Install the lock's pins (the environment's ``requirements.txt``, which the sandbox sees) from
        this host's wheelhouse, offline."""
        lockfile = str(self.env_dir / "requirements.txt")
        python = str(self.env_dir / "bin" / "python")
        if self.environments.installer() == "uv":
            argv = [self.environments.uv_binary(), "pip", "install", "--no-config", "--offline", "--no-index"]
            argv += ["--no-build", "--no-deps", "--require-hashes", "--python", python]
            argv += ["--find-links", str(self.wheelhouse), "--link-mode", self.link_mode(), "-r", lockfile]
            log_as = "$ uv pip install --offline --require-hashes --no-deps -r lock (this host's cache)"
            if self.cache_step(argv, log_as=log_as, plain=True) != 0:
                return False
            if self.compile_cache():
                argv = [self.environments.config.python, "-I", "-S", "-m", "compileall", "-qq", "-j", "0"]
                argv += ["--invalidation-mode", "checked-hash", str(self.env_dir / "lib")]
                self.sandboxed_step(argv, log_as="$ python -m compileall (the environment)", tmp=self.fresh("tmp"))
            return True
        argv = [python, "-m", "pip", "install", "--isolated", "--no-index", "--only-binary", ":all:", "--no-deps"]
        argv += ["--require-hashes", "--disable-pip-version-check", "--progress-bar", "off"]
        argv += ["--find-links", str(self.wheelhouse), "-r", lockfile]
        code, _ = self.sandboxed_step(argv, log_as="$ pip install --no-index --require-hashes --no-deps -r lock")
        return code == 0

    def fetch_locked(self) -> tuple[int, list[str]]:
        """Download the lock's files this host lacks, checked against their hashes, into its wheelhouse."""
        argv = [sys.executable, "-m", "pip", "download", "--only-binary", ":all:", "--no-deps", "--require-hashes"]
        argv += ["--progress-bar", "off", "--disable-pip-version-check", "--dest", str(self.fetched)]
        argv += ["--find-links", str(self.wheelhouse)]
        version = self.environments.python_info()["version"]
        if ".".join(version.split(".")[:2]) != f"{sys.version_info[0]}.{sys.version_info[1]}":
            argv += ["--python-version", version]
        argv += [*self.indexes.options, "-r", str(self.work / "requirements.txt")]
        code, tail = self.platform_step(argv, log_as="$ pip download --only-binary :all: --require-hashes -r lock")
        if code == 0:
            fetch.publish(self.fetched, self.wheelhouse)
        return code, tail

    def fresh(self, prefix: str) -> Path:
        """A new empty folder of this build's work folder (a step's own /tmp or output)."""
        self._fresh += 1
        path = self.work / f"{prefix}-{self._fresh}"
        path.mkdir(mode=0o755)
        return path

    @property
    def fetched(self) -> Path:
        return self.work / "fetch"

    @property
    def built(self) -> Path:
        return self.work / "built"

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        self.log(f"==> {name}")
        yield
        self.log(f"<== {name} done in {time.monotonic() - started:.1f}s")

    def _env(self) -> dict[str, str]:
        env = self.environments.pip_env(self.env_dir, sandboxed=self.sandboxed)
        tmp = SANDBOX_TMP if self.sandboxed else str(self.work / "tmp")
        env.update(UV_CACHE_DIR=f"{tmp}/uv-cache", UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never", TMPDIR=tmp)
        if not self.sandboxed:
            env["HOME"] = tmp
        return env

    def _readable(self) -> list[str]:
        readable = [str(self.wheelhouse), str(self.fetched), str(self.built)]
        if self.environments.installer() == "uv":
            readable.append(self.environments.uv_binary())
        return readable

    def sandboxed_step(
        self,
        argv: list[str],
        *,
        log_as: str,
        writable: tuple[Path, ...] = (),
        env_writable: bool = True,
        quiet: bool = False,
        tmp: Path | None = None,
        extra_env: dict[str, str] | None = None,
        plain: bool = False,
        capture: list[str] | None = None,
    ) -> tuple[int, list[str]]:
        """Run an installer step in the build sandbox (no network), or plainly where there is none.

        ``tmp`` is the step's /tmp (default: the build's, shared by its steps). ``plain`` runs it
        outside the sandbox: only for uv installing wheels of the wheelhouse (or reading metadata),
        which runs no package code. ``capture`` collects every output line (instead of the log).
        """
        self.wheelhouse.mkdir(parents=True, exist_ok=True)
        readable = [path for path in self._readable() if Path(path) not in writable]
        tmp_dir = tmp or self.work / "tmp"
        sandbox: list[str] = []
        if not plain:
            sandbox = self.environments.sandbox.build_argv(
                self.env_dir, tmp_dir, readable=readable, writable=writable, env_writable=env_writable
            )
        if not quiet:
            self.log(log_as)
        env = self._env()
        if not sandbox:
            env.update(TMPDIR=str(tmp_dir), HOME=str(tmp_dir), UV_CACHE_DIR=f"{tmp_dir}/uv-cache")
        env.update(extra_env or {})
        code, self.tail = self.environments.stream(
            [*sandbox, *argv],
            env=env,
            log=capture.append if capture is not None else (lambda _line: None) if quiet else self.log,
            should_cancel=self.should_cancel,
            deadline=self.deadline,
            cwd=self.work / "tmp",
        )
        return code, self.tail

    def platform_step(self, argv: list[str], *, log_as: str) -> tuple[int, list[str]]:
        """A fetch step: the platform's own code with the worker's network; no package code runs."""
        env = self.environments.pip_env(self.env_dir)
        env["PYTHONPATH"] = str(Path(fetch.__file__).resolve().parents[2])
        env["HOME"] = str(self.work / "tmp")
        self.log(log_as)
        code, self.tail = self.environments.stream(
            argv,
            env=env,
            log=self.log,
            should_cancel=self.should_cancel,
            deadline=self.deadline,
            cwd=self.work / "tmp",
        )
        return code, self.tail

    def cache_step(
        self, argv: list[str], *, log_as: str, quiet: bool = False, target: Path | None = None, plain: bool = False
    ) -> int:
        """A step that runs no package code (uv installing wheels of the wheelhouse, compileall) with
        the platform's uv cache writable: in the sandbox (unless ``plain``), with a fresh /tmp of its own.

        ``target`` is a throw-away folder it may write instead of the environment.
        """
        cache = self.environments.uv_cache
        cache.mkdir(parents=True, exist_ok=True)
        os.chmod(cache, 0o700)  # executions reach the linked files through their environment, never here
        writable = (cache,) if target is None else (cache, target)
        code, _ = self.sandboxed_step(
            argv,
            log_as=log_as,
            quiet=quiet,
            writable=writable,
            env_writable=target is None,
            tmp=self.fresh("tmp"),
            extra_env={"UV_CACHE_DIR": str(cache)},
            plain=plain,
        )
        return code

    def link_mode(self) -> str:
        """How uv puts the cache's files into the environment: hardlinks where nothing can write them.

        A hardlink shares the cache's inode, so whatever could write a file of the environment
        could change every environment linked to it. Here nothing can: uv replaces files it
        installs over (a new inode), compileall writes new files, no step that runs package code
        has the environment writable once these files are in it (wheels are built from source
        before, the smoke test and executions see it read-only: a read-only mount in the sandbox,
        files of another uid without one). Only a worker without sandbox that is not root runs
        executions as itself, able to write its own files: there, a copy.
        """
        return "hardlink" if self.sandboxed or os.geteuid() == 0 else "copy"

    def compile_cache(self) -> int:
        """Compile the bytecode of the uv cache's entries that have none yet; returns how many.

        uv copies an entry's files, ``__pycache__`` included, into each environment, whose files
        executions cannot write: without bytecode every execution would compile its imports
        again (0.8 s more for Qiskit). checked-hash: a .pyc is used only while its source's hash
        matches, whatever the copied file's mtime.
        """
        marks = self.environments.uv_compiled
        new: list[Path] = []
        for bucket in sorted(self.environments.uv_cache.glob("archive-v*")):  # uv's unpacked wheels
            for entry in sorted(os.scandir(bucket), key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False) and not (marks / f"{bucket.name}-{entry.name}").exists():
                    new.append(Path(entry.path))
        if not new:
            return 0
        argv = [self.environments.config.python, "-I", "-S", "-m", "compileall", "-qq", "-j", "0"]
        argv += ["--invalidation-mode", "checked-hash", *map(str, new)]
        # Its exit code says whether every file compiled; files that do not (Python 2 test data
        # of some packages) are imported by nobody, so it does not matter.
        self.cache_step(argv, log_as=f"$ python -m compileall ({len(new)} new packages in the platform's cache)")
        marks.mkdir(parents=True, exist_ok=True)
        for path in new:
            (marks / f"{path.parent.name}-{path.name}").touch()
        return len(new)

    def index_pins(self) -> list[str]:
        """``name==version`` of every wheel the fetch resolved from the index (none built from source)."""
        from packaging.utils import parse_wheel_filename

        pins: dict[str, str] = {}
        for path in sorted(self.fetched.iterdir()):
            if path.is_file() and not path.is_symlink() and path.name.endswith(".whl"):
                name, version, _build, _tags = parse_wheel_filename(path.name)
                pins[name] = f"{name}=={version}"
        return sorted(pins.values())

    def install(self, *, offline_cache_only: bool = False, quiet: bool = False) -> bool:
        """Install the requirements from fetched wheels only (never building), without network."""
        if self.environments.installer() == "uv":
            return self._uv_install(offline_cache_only=offline_cache_only, quiet=quiet)
        links = [self.wheelhouse]
        if not offline_cache_only:
            links += [self.fetched, self.built]
        python = str(self.env_dir / "bin" / "python")
        requirements = str(self.env_dir / "requirements.txt")
        argv = [python, "-m", "pip", "install", "--isolated", "--no-index", "--only-binary", ":all:"]
        argv += ["--disable-pip-version-check", "--progress-bar", "off"]
        for link in links:
            argv += ["--find-links", str(link)]
        argv += ["-r", requirements]
        log_as = "$ pip install --no-index --only-binary :all: -r requirements.txt"
        code, _ = self.sandboxed_step(argv, log_as=log_as, quiet=quiet)
        return code == 0

    def _uv_install(self, *, offline_cache_only: bool, quiet: bool) -> bool:
        """uv: wheels of the wheelhouse through the platform's uv cache, wheels built from source apart.

        The cache holds each wheel unpacked and compiled once, so a new environment is links to
        it (see :meth:`link_mode`). A hardlink needs the cache and the environment on one mount,
        which the sandbox's binds are not, so the linking step runs outside it: it is uv alone,
        installing wheels of the wheelhouse (no build, no network) into an environment with
        nothing in it yet, whose interpreter (queried by uv) is the platform's. Wheels built
        from source are installed after it, inside the sandbox, with a cache of their own.
        """
        uv = self.environments.uv_binary()
        python = str(self.env_dir / "bin" / "python")
        base = [uv, "pip", "install", "--no-config", "--offline", "--no-index", "--no-build", "--python", python]
        base += ["--find-links", str(self.wheelhouse)]
        if offline_cache_only:
            argv = [*base, "--link-mode", self.link_mode(), "-r", str(self.env_dir / "requirements.txt")]
            log_as = "$ uv pip install --offline --no-build -r requirements.txt (the platform's cache)"
            if self.cache_step(argv, log_as=log_as, quiet=quiet, plain=True) != 0:
                return False
            if self.compile_cache():
                # The cache had entries without bytecode (unpacked by this install, so the environment
                # got their files before the bytecode existed): compile the environment's too.
                argv = [self.environments.config.python, "-I", "-S", "-m", "compileall", "-qq", "-j", "0"]
                argv += ["--invalidation-mode", "checked-hash", str(self.env_dir / "lib")]
                self.sandboxed_step(argv, log_as="$ python -m compileall (the environment)", tmp=self.fresh("tmp"))
            return True
        pins = self.index_pins()
        if pins:
            # Unpacked into the cache first (symlinks in a throw-away folder), compiled, then linked.
            target = self.fresh("prime")
            argv = [*base, "--no-deps", "--link-mode", "symlink", "--target", str(target), *pins]
            if self.cache_step(argv, log_as="$ uv pip install --no-deps (into the platform's cache)", target=target):
                return False
            self.compile_cache()
            argv = [*base, "--no-deps", "--link-mode", self.link_mode(), *pins]
            log_as = f"$ uv pip install --offline --no-build --no-deps ({len(pins)} wheels)"
            if self.cache_step(argv, log_as=log_as, plain=True):
                return False
        built = sorted(str(path) for path in self.built.iterdir() if path.name.endswith(".whl"))
        if built:
            argv = [uv, "pip", "install", "--no-config", "--offline", "--no-index", "--no-build", "--no-deps"]
            argv += ["--python", python, "--link-mode", "copy", *built]
            log_as = f"$ uv pip install --no-deps ({len(built)} wheels built from source)"
            code, _ = self.sandboxed_step(argv, log_as=log_as, tmp=self.fresh("tmp"))
            if code != 0:
                return False
        return True

    def _download(self, requirements: list[str]) -> tuple[int, list[str]]:
        argv = [sys.executable, "-m", "pip", "download", "--only-binary", ":all:", "--progress-bar", "off"]
        argv += ["--disable-pip-version-check", "--dest", str(self.fetched)]
        argv += ["--find-links", str(self.wheelhouse), "--find-links", str(self.built)]
        version = self.environments.python_info()["version"]
        if ".".join(version.split(".")[:2]) != f"{sys.version_info[0]}.{sys.version_info[1]}":
            argv += ["--python-version", version]
        argv += self.indexes.options
        code, tail = self.platform_step([*argv, *requirements], log_as="$ pip download --only-binary :all: ...")
        if code == 0:
            # Only files the index served go to the shared cache; wheels package code built stay here.
            built = {path.name for path in self.built.iterdir()}
            for name in built:
                (self.fetched / name).unlink(missing_ok=True)
            added = fetch.publish(self.fetched, self.wheelhouse)
            if added:
                self.log(f"{len(added)} new files in the platform's cache")
        return code, tail

    def fetch(self, wanted: list[str]) -> None:
        """Download every wheel (and, in the sandbox only, build what has none) until the set resolves."""
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name

        for _round in range(20):
            # Each round starts empty, so what the last one saved is exactly the set it resolved.
            for path in self.fetched.iterdir():
                if not path.is_dir() or path.is_symlink():
                    path.unlink()
            code, tail = self._download(wanted)
            if code == 0:
                return
            missing = fetch.missing_requirement(tail)
            if missing is None:
                raise BuildError(
                    f"fetching the requirements failed:\n{pip_error(tail)}",
                    user_error=True,
                    code="build:user:requirements",
                )
            try:
                name = canonicalize_name(Requirement(missing).name)
            except ValueError:
                raise BuildError(f"no wheel for {missing}", user_error=True, code="build:user:requirements") from None
            if name in self.built_names:
                raise BuildError(
                    f"fetching the requirements failed:\n{pip_error(tail)}",
                    user_error=True,
                    code="build:user:requirements",
                )
            self.built_names.add(name)
            self._build_from_source(missing, name, no_wheel=pip_error(tail))
        raise BuildError("too many packages must be built from source", user_error=True, code="build:user:requirements")

    def _build_from_source(self, requirement: str, name: str, *, no_wheel: str = "") -> None:
        sdists = self.fetched / "sdist"
        sdists.mkdir(exist_ok=True)
        code, tail = self.platform_step(
            [sys.executable, "-m", "runtimes.local.fetch", str(sdists), requirement, *self.indexes.options],
            log_as=f"{requirement} has no wheel: fetching its source archive",
        )
        if code != 0:
            raise BuildError(
                f"fetching the requirements failed:\n{no_wheel}\nand there is no source archive either:\n"
                f"{pip_error(tail)}",
                user_error=True,
                code="build:user:requirements",
            )
        sdist = Path(tail[-1].strip())
        if sdist.parent != sdists or not sdist.is_file():
            raise BuildError(f"fetching the source of {requirement} failed", user_error=False)
        if not self.sandboxed:
            raise BuildError(
                f"{requirement} has no wheel for this platform. Building it from source runs its setup code, which "
                "the platform does only inside the build sandbox (bubblewrap, without network), and there is none "
                "here: the build refuses. Pin a version that has a wheel, or ask the operator to install bubblewrap.",
                user_error=True,
                code="build:user:needs-sandbox",
            )
        info = self.environments.python_info()
        key = fetch.built_wheel_key(
            sdist,
            python=os.path.realpath(self.environments.config.python),
            python_version=info["version"],
            installer=self.environments.installer(),
            indexes=" ".join(self.indexes.options),
        )
        cached = fetch.cached_built_wheel(self.environments.built_wheels / key)
        if cached is not None:
            self.log(f"{sdist.name}: its wheel built earlier from this very archive is in the platform's cache")
            self._take_built_wheel(cached, name)
            return
        try:
            build_requires = fetch.build_requirements(sdist)
        except RequirementsError as exc:
            raise BuildError(exc.message, user_error=True, code="build:user:requirements") from None
        if build_requires:
            code, tail = self._download(build_requires)
            if code != 0:
                raise BuildError(
                    f"fetching the build requirements of {sdist.name} failed:\n{pip_error(tail)}",
                    user_error=True,
                    code="build:user:requirements",
                )
        # Its own empty output folder and /tmp: nothing an earlier step's package code left
        # (a wheel, a cache in /tmp) can reach this build, so its wheel depends on the archive
        # and the platform's files only, and may be shared.
        out = self.fresh("out")
        python = str(self.env_dir / "bin" / "python")
        links = [str(self.wheelhouse), str(self.fetched)]
        if self.environments.installer() == "uv":
            argv = [self.environments.uv_binary(), "build", "--no-config", "--offline", "--no-index", "--wheel"]
            argv += ["--python", python, "--out-dir", str(out)]
            for link in links:
                argv += ["--find-links", link]
        else:
            argv = [python, "-m", "pip", "wheel", "-v", "--isolated", "--no-index", "--no-deps", "-w", str(out)]
            for link in links:
                argv += ["--find-links", link]
        code, tail = self.sandboxed_step(
            [*argv, str(sdist)],
            log_as=f"$ building {sdist.name} (in the sandbox, without network)",
            writable=(out,),
            env_writable=False,
            tmp=self.fresh("tmp"),
        )
        try:
            wheels = fetch.regular_wheels(out)
        except RequirementsError as exc:
            message = f"building {sdist.name} from source failed: {exc.message}"
            raise BuildError(message, user_error=True, code="build:user:requirements") from None
        if code != 0 or len(wheels) != 1:
            raise BuildError(
                f"building {sdist.name} from source failed:\n{pip_error(tail)}",
                user_error=True,
                code="build:user:requirements",
            )
        self._take_built_wheel(wheels[0], name)
        if fetch.store_built_wheel(self.built / wheels[0].name, self.environments.built_wheels / key):
            self.log(f"the wheel built from {sdist.name} is now in the platform's cache")

    def _take_built_wheel(self, wheel: Path, name: str) -> None:
        """Copy a wheel built from source into this build's folder, once it is checked."""
        target = self.built / wheel.name
        try:
            fetch.copy_regular(wheel, target)
            fetch.check_built_wheel(target, name)
        except (RequirementsError, ValueError, OSError, zipfile.BadZipFile) as exc:
            target.unlink(missing_ok=True)
            raise BuildError(str(exc), user_error=True, code="build:user:requirements") from None
