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
import os
import queue
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtimes._common import READABLE_DIR, has_requirements, pip_error, rmtree
from runtimes.base import BuildError, BuildSpec, CancelFunc, LogFunc, RuntimeUnavailable
from runtimes.local import supervisor as sup
from runtimes.local.handles import LocalConfig
from runtimes.local.sandbox import SANDBOX_TMP, Sandbox

# Bump when the layout of an environment changes, so old ones are rebuilt instead of reused.
ENV_FORMAT = "1"
READY_MARKER = ".planqk-ready"

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


def normalized_requirements(requirements: str) -> str:
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


class Environments:
    """The environments and code folders of one data folder."""

    def __init__(self, config: LocalConfig, data_dir: Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self.sandbox = Sandbox(config, lambda: self.python_info()["prefix"])
        self._python_info: dict[str, str] | None = None

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
        return hashlib.sha256((text + normalized_requirements(requirements)).encode()).hexdigest()

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

    def create(self, env_dir: Path, requirements: str, *, log: LogFunc, should_cancel: CancelFunc) -> None:
        deadline = time.monotonic() + self.config.build_timeout_seconds
        rmtree(env_dir)  # a half-built leftover of a crashed build
        tmp_dir = env_dir.with_name(f".{env_dir.name}.tmp")
        rmtree(tmp_dir)
        try:
            env_dir.mkdir(mode=0o755)
            tmp_dir.mkdir(mode=0o700)
            sandbox = self.sandbox.build_argv(env_dir, tmp_dir)
            env = self.pip_env(env_dir, sandboxed=bool(sandbox))
            if sandbox:
                log("build sandbox: bubblewrap (network for the package index; only the environment is writable)")
            else:
                log(f"build sandbox: none ({self.sandbox.mode()[1]}): pip runs with the worker's rights")
            log(f"$ python -m venv {env_dir.name}")
            code, tail = self.stream(
                [*sandbox, self.config.python, "-m", "venv", str(env_dir)],
                env=env,
                log=log,
                should_cancel=should_cancel,
                deadline=deadline,
            )
            if code != 0:
                raise BuildError(
                    f"creating the virtual environment failed:\n{pip_error(tail)}",
                    user_error=False,
                    code="build:platform:venv",
                )
            (env_dir / "requirements.txt").write_text(requirements)
            if has_requirements(requirements):
                log("$ pip install -r requirements.txt")
                code, tail = self.stream(
                    [*sandbox, str(env_dir / "bin" / "python"), "-m", "pip", "install", "-r", "requirements.txt"],
                    env=env,
                    log=log,
                    should_cancel=should_cancel,
                    deadline=deadline,
                    cwd=env_dir,
                )
                if code != 0:
                    raise BuildError(
                        f"pip install failed:\n{pip_error(tail)}",
                        user_error=True,
                        code="build:user:requirements",
                    )
            else:
                log("requirements.txt lists no packages")
            sup.write_json_atomic(
                env_dir / READY_MARKER,
                {"created_at": time.time(), "python": self.python_info()["version"]},
            )
        except BaseException:
            rmtree(env_dir)
            raise
        finally:
            rmtree(tmp_dir)

    def install_code(self, spec: BuildSpec, log: LogFunc) -> Path:
        """Copy the user code and the runner to ``builds/<version_id>``, replacing an older copy."""
        self.builds_dir.mkdir(parents=True, exist_ok=True)
        final = self.builds_dir / spec.version_id
        staging = self.builds_dir / f".{spec.version_id}.{secrets.token_hex(4)}.tmp"
        try:
            skipped = copy_tree(Path(spec.source_dir), staging)
            for path in skipped:
                log(f"skipped {os.path.relpath(path, spec.source_dir)}: not a regular file or folder")
            runner = self.config.runner_dir or self._runner_dir()
            # The platform's runner wins over a folder of that name in the upload.
            rmtree(staging / "planqk_runtime")
            copy_tree(runner, staging / "planqk_runtime")
            old = self.builds_dir / f".{spec.version_id}.{secrets.token_hex(4)}.old"
            if final.exists():
                final.rename(old)
            staging.rename(final)
            rmtree(old)
        except BaseException:
            rmtree(staging)
            raise
        return final

    @staticmethod
    def _runner_dir() -> Path:
        found = importlib.util.find_spec("planqk_runtime")
        if found is None or not found.submodule_search_locations:
            raise BuildError("the runner package planqk_runtime is not installed", user_error=False)
        return Path(next(iter(found.submodule_search_locations)))

    def ensure(self, requirements: str, *, log: LogFunc, should_cancel: CancelFunc) -> tuple[str, Path, bool]:
        """The environment for ``requirements``, built unless a finished one exists: (hash, folder, reused)."""
        key = self.env_key(requirements)
        env_dir = self.envs_dir / key
        log(f"environment {key[:12]} (Python {self.python_info()['version']})")
        with self.lock(key, log, should_cancel):
            reused = (env_dir / READY_MARKER).exists()
            if reused:
                log("requirements unchanged: reusing the environment")
                # Its mtime says when it was last used, for garbage collection by age.
                os.utime(env_dir / READY_MARKER)
            else:
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


def _last_used(env_dir: Path) -> float:
    for path in (env_dir / READY_MARKER, env_dir):
        with contextlib.suppress(OSError):
            return path.stat().st_mtime
    return 0.0
