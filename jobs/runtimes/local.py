"""The local runtime: the embedded default, no Docker needed.

Builds
    One virtual environment per distinct ``requirements.txt`` and Python, under
    ``{DATA_DIR}/envs/<sha256>``, created with ``python -m venv`` and ``pip install -r``. A file
    lock makes two builds of the same hash build once; a marker written after success tells a
    finished environment from a half-built one, so an unchanged rebuild only copies the code.
    The user code (plus a copy of the runner, ``planqk_runtime``) goes to
    ``{DATA_DIR}/builds/<version_id>/``.

Executions
    ``{DATA_DIR}/executions/<execution_id>/`` holds ``input/``, ``output.log`` and the files of
    :mod:`jobs.runtimes._supervisor`, which starts ``python -m planqk_runtime`` and outlives the
    worker. Limits, strongest available first:

    - a cgroup per execution (v2, or v1 ``pids``/``memory``/``cpu``) where the worker may write
      to ``/sys/fs/cgroup``: ``pids.max`` stops fork bombs, the memory limit ends in an OOM kill,
      the CPU quota throttles; the cgroup also finds every process to kill;
    - ``setrlimit``: ``RLIMIT_FSIZE`` caps ``output.log``, ``RLIMIT_CPU`` bounds CPU time; when
      there is no cgroup, ``RLIMIT_AS`` bounds each process's memory (``MemoryError``) and
      ``RLIMIT_NPROC`` the tasks of the uid (what it runs already plus ``max_pids``: the kernel
      counts per uid, not per execution, so concurrent executions share that budget);
    - when the worker runs as root, user code runs as an unprivileged uid (65534), because
      ``RLIMIT_NPROC`` does not apply to root and root can undo every other limit;
    - bubblewrap (``PLANQK_SANDBOX=auto`` uses it when it works): new pid, network, IPC and UTS
      namespaces, a read-only view of the system, the environment and the code, a private
      ``/tmp``. Without it, a root worker still gives user code a private network namespace,
      but executions share uid 65534 and see each other's processes.

The supervisor is a child subreaper, enforces the timeout and the output cap itself, and kills
the whole tree (cgroup, process group, pid namespace, or the ``PLANQK_EXECUTION_ID`` marker in
the environment as the last resort) when the main program ends.
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
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from jobs.runtimes import _supervisor as sup
from jobs.runtimes._common import READABLE_DIR, decode_prefix, has_requirements, pip_error, rmtree
from jobs.runtimes.base import (
    BuildError,
    BuildResult,
    BuildSpec,
    CancelFunc,
    ExecutionSpec,
    ExecutionState,
    LogFunc,
    Runtime,
    RuntimeUnavailable,
    _never,
    check_id,
)

logger = logging.getLogger(__name__)

# Bump when the layout of an environment changes, so old ones are rebuilt instead of reused.
ENV_FORMAT = "1"
READY_MARKER = ".planqk-ready"
HANDLE_FILE = "handle.json"
LAUNCH_FILE = "launch.json"
OUTPUT_FILE = "output.log"
SUPERVISOR_SCRIPT = Path(sup.__file__).resolve()

# How long poll() lets the supervisor handle a timeout before the worker kills by itself.
TIMEOUT_GRACE_SECONDS = 10.0
# How long a stop may take before everything is killed without the supervisor's help.
STOP_WAIT_SECONDS = 3.0
READ_CHUNK_BYTES = 1024 * 1024
# Inside the sandbox /tmp is a private tmpfs, so the usual shared-/tmp worries do not apply.
SANDBOX_TMP = "/tmp"  # noqa: S108
TRAVERSE_ONLY = 0o711

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

# System folders bound read-only into the sandbox (the rest of / stays invisible).
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "mime.types",
    "nsswitch.conf",
)

# What a build's pip needs of /etc besides _ETC_FILES: name resolution and pip's own configuration.
_BUILD_ETC_FILES = ("resolv.conf", "hosts", "host.conf", "gai.conf", "pip.conf", "xdg/pip")

# Runs inside the sandbox as root without other capabilities: drops to the unprivileged uid,
# then becomes the runner. A fixed string: nothing of the user reaches it but argv values.
_DROP_PRIVILEGES = (
    "import os, sys\n"
    "os.setgroups([])\n"
    "os.setgid(int(sys.argv[2]))\n"
    "os.setuid(int(sys.argv[1]))\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


class _Bwrap:
    """A bubblewrap command line under construction.

    bubblewrap creates a bind target's missing parents as 0700 when run as root: they are made
    0755 here first, so an unprivileged uid can reach the mount.
    """

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.made: set[str] = {"/", SANDBOX_TMP}

    def bind(self, option: str, source: str, target: str) -> None:
        for parent in reversed(Path(target).parents):
            if str(parent) not in self.made:
                self.made.add(str(parent))
                self.args.extend(["--perms", "0755", "--dir", str(parent)])
        self.args.extend([option, source, target])

    def system(self, etc_files: tuple[str, ...], python_prefix: str) -> None:
        """The system folders, the given files of /etc and the interpreter, all read-only."""
        for name in _SYSTEM_DIRS:
            path = Path("/") / name
            if path.is_symlink():
                self.args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                self.args += ["--ro-bind", str(path), str(path)]
        for name in etc_files:
            self.bind("--ro-bind-try", f"/etc/{name}", f"/etc/{name}")
        if not python_prefix.startswith("/usr/") and python_prefix != "/usr":
            self.bind("--ro-bind", python_prefix, python_prefix)


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


def _default_python() -> str:
    # The interpreter behind the worker's own virtual environment, not the venv's wrapper.
    return getattr(sys, "_base_executable", None) or sys.executable


def _default_ca_bundle() -> str:
    path = "/etc/ssl/certs/ca-certificates.crt"
    return path if os.path.exists(path) else ""


@dataclass(frozen=True)
class LocalConfig:
    """Everything the local runtime needs; :meth:`from_settings` reads Django's settings."""

    data_dir: Path
    python: str = field(default_factory=_default_python)
    sandbox: str = "auto"
    run_as_uid: int = 65534
    run_as_gid: int = 65534
    pip_index_url: str = ""
    pip_extra_index_url: str = ""
    ca_bundle: str = field(default_factory=_default_ca_bundle)
    runner_dir: Path | None = None
    bwrap: str = "bwrap"
    use_cgroups: bool = True
    cgroup_name: str = "planqk"
    build_timeout_seconds: int = 1800

    @classmethod
    def from_settings(cls) -> LocalConfig:
        """The configuration from the ``PLANQK_*`` Django settings (with the documented defaults)."""
        from django.conf import settings

        data_dir = getattr(settings, "PLANQK_DATA_DIR", None) or Path(settings.BASE_DIR) / "var"
        return cls(
            data_dir=Path(data_dir),
            python=getattr(settings, "PLANQK_LOCAL_PYTHON", "") or _default_python(),
            sandbox=getattr(settings, "PLANQK_SANDBOX", "auto") or "auto",
            pip_index_url=getattr(settings, "PLANQK_PIP_INDEX_URL", "") or "",
            pip_extra_index_url=getattr(settings, "PLANQK_PIP_EXTRA_INDEX_URL", "") or "",
            build_timeout_seconds=int(getattr(settings, "PLANQK_BUILD_TIMEOUT", 1800) or 1800),
            ca_bundle=getattr(settings, "PLANQK_BUILD_CA_BUNDLE", None) or _default_ca_bundle(),
        )


@dataclass(frozen=True)
class _Cgroups:
    """Where this host lets us create cgroups: v2 (one tree) or v1 (one tree per controller)."""

    version: int
    bases: dict[str, Path]

    def for_execution(self, execution_id: str) -> dict[str, str]:
        return {ctrl: str(base / execution_id) for ctrl, base in self.bases.items()}


def _cgroup_mounts() -> dict[str, Path]:
    """Mount points of cgroup hierarchies by controller (``"unified"`` for cgroup2)."""
    mounts: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return mounts
    for line in lines:
        left, _, right = line.partition(" - ")
        fstype, _, options = right.split(" ")[:3] if len(right.split(" ")) >= 3 else ("", "", "")
        mount_point = Path(left.split(" ")[4])
        if fstype == "cgroup2":
            mounts.setdefault("unified", mount_point)
        elif fstype == "cgroup":
            for option in options.split(","):
                if option in ("pids", "memory", "cpu"):
                    mounts.setdefault(option, mount_point)
    return mounts


def _detect_cgroups(name: str) -> _Cgroups | None:
    """A writable cgroup layout with pids and memory control, or None."""
    mounts = _cgroup_mounts()
    unified = mounts.get("unified")
    if unified and (unified / "cgroup.controllers").exists():
        controllers = (unified / "cgroup.controllers").read_text().split()
        if "pids" in controllers and "memory" in controllers:
            base = unified / name
            try:
                base.mkdir(exist_ok=True)
                wanted = [c for c in ("pids", "memory", "cpu") if c in controllers]
                for path in (unified, base):
                    enabled = (path / "cgroup.subtree_control").read_text().split()
                    missing = " ".join(f"+{c}" for c in wanted if c not in enabled)
                    if missing:
                        (path / "cgroup.subtree_control").write_text(missing)
            except OSError as exc:
                logger.info("cgroup v2 at %s is not usable: %s", unified, exc)
            else:
                return _Cgroups(2, dict.fromkeys(wanted, base))
    if "pids" in mounts and "memory" in mounts:
        bases = {c: mounts[c] / name for c in ("pids", "memory", "cpu") if c in mounts}
        try:
            for base in bases.values():
                base.mkdir(exist_ok=True)
                if not os.access(base, os.W_OK):
                    raise PermissionError(f"{base} is not writable")
        except OSError as exc:
            logger.info("cgroup v1 is not usable: %s", exc)
            return None
        return _Cgroups(1, bases)
    return None


def _python_info(python: str) -> dict[str, str]:
    code = "import json, sys; print(json.dumps({'version': sys.version.split()[0], 'prefix': sys.base_prefix}))"
    try:
        out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeUnavailable(f"the Python interpreter {python!r} does not run: {exc}") from exc
    return json.loads(out.stdout)


def _normalized_requirements(requirements: str) -> str:
    return "\n".join(line.rstrip() for line in requirements.replace("\r\n", "\n").split("\n")).strip() + "\n"


def _accessible_to(path: str, uid: int, gid: int) -> bool:
    """Whether ``uid`` can reach and read ``path`` (every parent searchable), judged by mode bits."""
    current = Path(os.path.realpath(path))
    for part in [current, *current.parents]:
        try:
            st = part.stat()
        except OSError:
            return False
        need = stat.S_IXOTH if part != current else stat.S_IROTH
        if st.st_uid == uid:
            need <<= 6
        elif st.st_gid == gid:
            need <<= 3
        if not st.st_mode & need:
            return False
    return True


def _tasks_of(uid: int) -> int:
    """How many tasks (threads) ``uid`` runs now: what RLIMIT_NPROC counts besides the new ones.

    RLIMIT_NPROC counts every task of the real uid, not of one process tree, so the budget of an
    execution is what its uid runs already plus ``max_pids``.
    """
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry.name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1").split()[0] or -1) == uid:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


def _copy_tree(source: Path, target: Path) -> list[str]:
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
            skipped.extend(_copy_tree(Path(entry.path), dest))
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(entry.path, dest, follow_symlinks=False)
            os.chmod(dest, READABLE_DIR if os.stat(entry.path).st_mode & stat.S_IXUSR else 0o644)
        else:
            skipped.append(entry.path)
    return skipped


class LocalRuntime(Runtime):
    """Virtual environments and supervised subprocesses on the worker's own machine."""

    name: ClassVar[str] = "local"
    # Supervisors this process started, so it reaps them (others are reaped by init).
    _children: ClassVar[dict[str, subprocess.Popen[bytes]]] = {}
    _bwrap_checked: ClassVar[dict[tuple[str, bool], str | None]] = {}

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir).resolve()
        self._cgroups: _Cgroups | bool | None = False  # False: not detected yet
        self._python_info: dict[str, str] | None = None
        self._warned = False

    @classmethod
    def from_settings(cls) -> LocalRuntime:
        """The runtime as the Django settings configure it."""
        return cls(LocalConfig.from_settings())

    # --- paths and probes --------------------------------------------------------------------

    @property
    def envs_dir(self) -> Path:
        return self.data_dir / "envs"

    @property
    def builds_dir(self) -> Path:
        return self.data_dir / "builds"

    @property
    def executions_dir(self) -> Path:
        return self.data_dir / "executions"

    def python_info(self) -> dict[str, str]:
        """Version and prefix of the interpreter that environments are built from."""
        if self._python_info is None:
            self._python_info = _python_info(self.config.python)
        return self._python_info

    def env_key(self, requirements: str) -> str:
        """The hash naming the environment for ``requirements`` on this runtime's Python."""
        info = self.python_info()
        text = f"{ENV_FORMAT}\n{os.path.realpath(self.config.python)}\n{info['version']}\n"
        return hashlib.sha256((text + _normalized_requirements(requirements)).encode()).hexdigest()

    def cgroups(self) -> _Cgroups | None:
        """The cgroup layout executions get, or None where cgroups cannot be written."""
        if self._cgroups is False:
            self._cgroups = _detect_cgroups(self.config.cgroup_name) if self.config.use_cgroups else None
        return self._cgroups  # type: ignore[return-value]

    def _bwrap_problem(self) -> str | None:
        """None when bubblewrap works here, else why not."""
        bwrap = shutil.which(self.config.bwrap)
        if not bwrap:
            return "bubblewrap not installed"
        as_root = os.geteuid() == 0
        key = (bwrap, as_root)
        if key not in self._bwrap_checked:
            # The options executions rely on, so an old bubblewrap fails here and not in a job.
            args = [bwrap, "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "--perms", "1777"]
            args += ["--size", "1048576", "--tmpfs", SANDBOX_TMP, "--die-with-parent", "--new-session"]
            if as_root:
                args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            else:
                args.append("--unshare-user")
            try:
                probe = subprocess.run([*args, "--", "true"], capture_output=True, text=True, timeout=30)
                problem = None if probe.returncode == 0 else f"bubblewrap fails here: {probe.stderr.strip()}"
            except (OSError, subprocess.SubprocessError) as exc:
                problem = f"bubblewrap fails here: {exc}"
            self._bwrap_checked[key] = problem
        return self._bwrap_checked[key]

    def sandbox_mode(self) -> tuple[str, str]:
        """``("bwrap", "")`` or ``("none", why)`` according to ``PLANQK_SANDBOX``."""
        wanted = self.config.sandbox
        if wanted not in ("auto", "bwrap", "none"):
            raise RuntimeUnavailable(f"PLANQK_SANDBOX must be auto, bwrap or none, not {wanted!r}")
        if wanted == "none":
            return "none", "PLANQK_SANDBOX=none"
        problem = self._bwrap_problem()
        if problem is None:
            return "bwrap", ""
        if wanted == "bwrap":
            raise RuntimeUnavailable(f"PLANQK_SANDBOX=bwrap but {problem}")
        return "none", problem

    def sandbox_line(self) -> str:
        """One line for logs and the settings page saying how user code is isolated."""
        mode, why = self.sandbox_mode()
        if mode == "bwrap":
            return "sandbox: bubblewrap (no network, read-only system, private /tmp)"
        return f"sandbox: none ({why}): only resource limits apply"

    def describe(self) -> dict[str, str]:
        mode, _ = self.sandbox_mode()
        cg = self.cgroups()
        as_root = os.geteuid() == 0
        user = f"uid {self.config.run_as_uid}" if as_root else f"the worker's uid {os.geteuid()}"
        if cg:
            pids = f"cgroup v{cg.version} pids.max"
            memory = f"cgroup v{cg.version} memory limit (OOM kill)"
        else:
            pids = f"RLIMIT_NPROC (counts every process of {user})"
            memory = "RLIMIT_AS (address space per process; MemoryError)"
        isolated = mode == "bwrap" or as_root
        network = "none (own network namespace)" if isolated else "the host's network (no sandbox)"
        return {
            "runtime": self.name,
            "sandbox": self.sandbox_line(),
            "user": user,
            "pids": pids,
            "memory": memory,
            "cpu": f"RLIMIT_CPU{' + cgroup CPU quota' if cg and 'cpu' in cg.bases else ''}",
            "output": "RLIMIT_FSIZE on output.log + kill at the cap",
            "network": network,
            "timeout": "wall clock, enforced by the execution's supervisor and by poll()",
        }

    # --- builds ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _env_lock(self, key: str, log: LogFunc, should_cancel: CancelFunc) -> Iterator[None]:
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

    def _stream(
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

    def _build_sandbox(self, env_dir: Path, tmp_dir: Path) -> list[str]:
        """The bubblewrap command line a build step runs under, or ``[]`` without a sandbox.

        pip runs the setup scripts and build backends of whatever requirements.txt names, which
        on the worker's host would run with the worker's rights. Inside: the network (pip needs
        the package index), the system, the interpreter and the pip configuration read-only, and
        writable only the environment being built and a private /tmp (on disk: wheels can be
        large). The platform's data, settings and the other environments are not there at all.
        """
        if self.sandbox_mode()[0] != "bwrap":
            return []
        bwrap = shutil.which(self.config.bwrap) or self.config.bwrap
        args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        # As root: no capabilities, so the read-only mounts stay read-only; else a user namespace.
        args += ["--cap-drop", "ALL"] if os.geteuid() == 0 else ["--unshare-user"]
        args += ["--die-with-parent", "--new-session", "--hostname", "planqk-build"]
        mounts = _Bwrap(args)
        mounts.bind("--bind", str(tmp_dir), SANDBOX_TMP)
        mounts.system(_ETC_FILES + _BUILD_ETC_FILES, self.python_info()["prefix"])
        for extra in (self.config.ca_bundle, os.environ.get("PIP_CONFIG_FILE", "")):
            if extra and os.path.isabs(extra):
                mounts.bind("--ro-bind-try", extra, extra)
        mounts.bind("--bind", str(env_dir), str(env_dir))
        return [*args, "--proc", "/proc", "--dev", "/dev", "--chdir", str(env_dir), "--"]

    def _pip_env(self, env_dir: Path, *, sandboxed: bool = False) -> dict[str, str]:
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

    def _create_env(self, env_dir: Path, requirements: str, *, log: LogFunc, should_cancel: CancelFunc) -> None:
        deadline = time.monotonic() + self.config.build_timeout_seconds
        rmtree(env_dir)  # a half-built leftover of a crashed build
        tmp_dir = env_dir.with_name(f".{env_dir.name}.tmp")
        rmtree(tmp_dir)
        try:
            env_dir.mkdir(mode=0o755)
            tmp_dir.mkdir(mode=0o700)
            sandbox = self._build_sandbox(env_dir, tmp_dir)
            env = self._pip_env(env_dir, sandboxed=bool(sandbox))
            if sandbox:
                log("build sandbox: bubblewrap (network for the package index; only the environment is writable)")
            else:
                log(f"build sandbox: none ({self.sandbox_mode()[1]}): pip runs with the worker's rights")
            log(f"$ python -m venv {env_dir.name}")
            code, tail = self._stream(
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
                code, tail = self._stream(
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

    def _install_code(self, spec: BuildSpec, log: LogFunc) -> Path:
        """Copy the user code and the runner to ``builds/<version_id>``, replacing an older copy."""
        self.builds_dir.mkdir(parents=True, exist_ok=True)
        final = self.builds_dir / spec.version_id
        staging = self.builds_dir / f".{spec.version_id}.{secrets.token_hex(4)}.tmp"
        try:
            skipped = _copy_tree(Path(spec.source_dir), staging)
            for path in skipped:
                log(f"skipped {os.path.relpath(path, spec.source_dir)}: not a regular file or folder")
            runner = self.config.runner_dir or self._runner_dir()
            # The platform's runner wins over a folder of that name in the upload.
            rmtree(staging / "planqk_runtime")
            _copy_tree(runner, staging / "planqk_runtime")
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

    def build(self, spec: BuildSpec, *, log: LogFunc, should_cancel: CancelFunc = _never) -> BuildResult:
        check_id(spec.version_id, "version id")
        source = Path(spec.source_dir)
        if not (source / "src").is_dir():
            raise BuildError("the user code has no src/ folder", user_error=True, code="build:user:no-src")
        started = time.monotonic()
        log(self.sandbox_line())
        info = self.python_info()
        key = self.env_key(spec.requirements)
        env_dir = self.envs_dir / key
        log(f"environment {key[:12]} (Python {info['version']})")
        with self._env_lock(key, log, should_cancel):
            reused = (env_dir / READY_MARKER).exists()
            if reused:
                log("requirements unchanged: reusing the environment")
                # Its mtime says when it was last used, for garbage collection by age.
                os.utime(env_dir / READY_MARKER)
            else:
                self._create_env(env_dir, spec.requirements, log=log, should_cancel=should_cancel)
        if should_cancel():
            raise BuildError("build cancelled", user_error=False, code="build:cancelled")
        build_dir = self._install_code(spec, log)
        log(f"build finished in {time.monotonic() - started:.1f}s")
        return BuildResult(
            handle={
                "runtime": self.name,
                "version_id": spec.version_id,
                "env_key": key,
                "env_dir": str(env_dir),
                "build_dir": str(build_dir),
                "python_version": info["version"],
                "reused": reused,
            }
        )

    def remove_build(self, build_handle: dict[str, Any]) -> None:
        version_id = check_id(build_handle["version_id"], "version id")
        rmtree(self.builds_dir / version_id)

    def garbage_collect_envs(self, keep: set[str]) -> list[str]:
        """Delete environments whose hash is not in ``keep``; returns the deleted hashes.

        An environment a build is creating right now (its lock is held) is left alone.
        """
        removed: list[str] = []
        if not self.envs_dir.exists():
            return removed
        for entry in sorted(self.envs_dir.iterdir()):
            if not entry.is_dir() or entry.name in keep or len(entry.name) != 64:
                continue
            with open(self.envs_dir / f"{entry.name}.lock", "a+") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                rmtree(entry)
                (self.envs_dir / f"{entry.name}.lock").unlink(missing_ok=True)
                removed.append(entry.name)
        return removed

    # --- executions --------------------------------------------------------------------------

    def _sandbox_argv(
        self,
        *,
        build: dict[str, Any],
        exec_dir: Path,
        python: str,
        uid: int | None,
        gid: int | None,
        tmp_bytes: int,
    ) -> list[str]:
        """The bubblewrap command line around the runner."""
        bwrap = shutil.which(self.config.bwrap) or self.config.bwrap
        args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        if uid is None:
            # Unprivileged: bubblewrap needs a user namespace for everything else.
            args.append("--unshare-user")
        else:
            # Root: keep only what the drop to the unprivileged uid below needs.
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        # --die-with-parent ties the sandbox to the supervisor, never to the worker, so a
        # restarted worker finds the execution still running and a killed supervisor leaves
        # nothing behind. --new-session keeps user code away from any terminal.
        args += ["--die-with-parent", "--new-session", "--hostname", "planqk"]
        # /tmp lives in memory: bound it like memory, or it is a way around the memory limit.
        # Mounted first, so the binds below stay visible when the data folder is under /tmp.
        args += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", SANDBOX_TMP]
        mounts = _Bwrap(args)
        mounts.system(_ETC_FILES, self.python_info()["prefix"])
        bind = mounts.bind
        bind("--ro-bind", str(exec_dir / "etc" / "passwd"), "/etc/passwd")
        bind("--ro-bind", str(exec_dir / "etc" / "group"), "/etc/group")
        bind("--ro-bind", build["env_dir"], build["env_dir"])
        bind("--ro-bind", build["build_dir"], build["build_dir"])
        bind("--ro-bind", str(exec_dir / "input"), str(exec_dir / "input"))
        bind("--bind", str(exec_dir / "output"), str(exec_dir / "output"))
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--chdir", build["build_dir"], "--"]
        runner = [python, "-m", "planqk_runtime"]
        if uid is not None:
            return [*args, python, "-I", "-S", "-c", _DROP_PRIVILEGES, str(uid), str(gid), *runner]
        return [*args, *runner]

    def _discard(self, exec_dir: Path) -> None:
        """Kill and remove what an earlier attempt of this execution left behind."""
        with contextlib.suppress(OSError, ValueError):
            old = json.loads((exec_dir / HANDLE_FILE).read_text())
            self._stop(old, "retry")
            self._forget(old)
        rmtree(exec_dir)

    def start(self, spec: ExecutionSpec) -> dict[str, Any]:
        execution_id = check_id(spec.execution_id, "execution id")
        build = spec.build
        if build.get("runtime") != self.name:
            raise ValueError(f"not a build of the local runtime: {build.get('runtime')!r}")
        for key in ("env_dir", "build_dir"):
            if not Path(build[key]).is_dir():
                raise RuntimeUnavailable(f"the build's {key} {build[key]} is gone; build the version again")
        mode, _ = self.sandbox_mode()
        if mode == "none" and not self._warned:
            logger.warning("%s", self.sandbox_line())
            self._warned = True
        as_root = os.geteuid() == 0
        uid = self.config.run_as_uid if as_root else None
        gid = self.config.run_as_gid if as_root else None
        python = str(Path(build["env_dir"]) / "bin" / "python")
        if mode == "none" and uid is not None:
            for path in (python, os.path.join(self.python_info()["prefix"], "lib")):
                if not _accessible_to(path, uid, gid or uid):
                    raise RuntimeUnavailable(
                        f"{path} is not readable by uid {uid}, which runs user code without a sandbox: "
                        "build environments from a Python installed where every user can read it "
                        "(PLANQK_LOCAL_PYTHON), or install bubblewrap"
                    )

        self._reap_finished()
        self.executions_dir.mkdir(parents=True, exist_ok=True)
        # Searchable, not listable: without a sandbox, executions share a uid and must not find
        # each other's input by listing folders.
        os.chmod(self.executions_dir, TRAVERSE_ONLY)
        exec_dir = self.executions_dir / execution_id
        if exec_dir.exists():
            self._discard(exec_dir)
        for sub in ("input/data", "input/params", "output", "home", "tmp", "etc"):
            (exec_dir / sub).mkdir(parents=True, exist_ok=True)
        (exec_dir / "input" / "data" / "data.json").write_text(json.dumps(spec.data or {}))
        (exec_dir / "input" / "params" / "params.json").write_text(json.dumps(spec.params or {}))
        (exec_dir / OUTPUT_FILE).touch()
        run_uid = uid if uid is not None else os.getuid()
        run_gid = gid if gid is not None else os.getgid()
        (exec_dir / "etc" / "passwd").write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\nplanqk:x:{run_uid}:{run_gid}:planqk:/tmp:/usr/sbin/nologin\n"
        )
        (exec_dir / "etc" / "group").write_text(f"root:x:0:\nplanqk:x:{run_gid}:\n")
        for path in exec_dir.rglob("*"):
            os.chmod(path, READABLE_DIR if path.is_dir() else 0o644)
        os.chmod(exec_dir, TRAVERSE_ONLY)
        if uid is not None:
            for sub in ("output", "home", "tmp"):
                os.chown(exec_dir / sub, uid, gid if gid is not None else uid)

        sandboxed = mode == "bwrap"
        env = {
            "PATH": f"{Path(build['env_dir']) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "VIRTUAL_ENV": build["env_dir"],
            "HOME": SANDBOX_TMP if sandboxed else str(exec_dir / "home"),
            "TMPDIR": SANDBOX_TMP if sandboxed else str(exec_dir / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        for name, value in spec.env.items():
            if not name or "=" in name or "\0" in name or "\0" in str(value):
                raise ValueError(f"invalid environment variable {name!r}")
            env[name] = str(value)
        # Set last: user-supplied variables must not redirect the input or hide the marker.
        env["INPUT_DIR"] = str(exec_dir / "input")
        env[sup.MARKER_ENV] = execution_id

        cgroups = self.cgroups()
        memory_bytes = int(spec.memory_mb) * 1024 * 1024
        cpu_seconds = int(spec.timeout_seconds * max(1.0, spec.cpus)) + 5
        rlimits: dict[str, int | None] = {
            "CPU": cpu_seconds,
            "FSIZE": int(spec.max_output_bytes),
            "CORE": 0,
            # A cgroup limits the whole tree exactly; without one these are the limits.
            "AS": None if cgroups else memory_bytes,
            "NPROC": None if cgroups else _tasks_of(run_uid) + int(spec.max_pids),
        }
        cgroup = None
        if cgroups:
            cgroup = {
                "version": cgroups.version,
                "dirs": cgroups.for_execution(execution_id),
                "pids_max": int(spec.max_pids),
                "memory_bytes": memory_bytes,
                "cpu_period_us": 100_000,
                "cpu_quota_us": int(spec.cpus * 100_000) if spec.cpus > 0 else 0,
            }
        if sandboxed:
            argv = self._sandbox_argv(
                build=build, exec_dir=exec_dir, python=python, uid=uid, gid=gid, tmp_bytes=memory_bytes
            )
        else:
            argv = [python, "-m", "planqk_runtime"]
        launch = {
            "execution_id": execution_id,
            "dir": str(exec_dir),
            "argv": argv,
            "env": env,
            "cwd": build["build_dir"],
            "output": str(exec_dir / OUTPUT_FILE),
            "timeout": spec.timeout_seconds,
            "max_output_bytes": spec.max_output_bytes,
            "rlimits": rlimits,
            "cgroup": cgroup,
            # Without bubblewrap the supervisor drops privileges and unshares the network itself.
            "uid": None if sandboxed else uid,
            "gid": None if sandboxed else gid,
            "unshare": not sandboxed and as_root,
            "pid_namespace": sandboxed,
        }
        sup.write_json_atomic(exec_dir / LAUNCH_FILE, launch)
        with open(exec_dir / "supervisor.log", "ab") as sup_log:
            proc = subprocess.Popen(
                [sys.executable, "-I", str(SUPERVISOR_SCRIPT), str(exec_dir / LAUNCH_FILE)],
                stdin=subprocess.DEVNULL,
                stdout=sup_log,
                stderr=sup_log,
                cwd=exec_dir,
                env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
                close_fds=True,
            )
        self._children[execution_id] = proc
        handle = {
            "runtime": self.name,
            "execution_id": execution_id,
            "pid": proc.pid,
            "pgid": proc.pid,
            "start_time": sup.proc_start_time(proc.pid),
            "dir": str(exec_dir),
            "started_at": time.time(),
            "timeout": spec.timeout_seconds,
            "max_output_bytes": spec.max_output_bytes,
            "sandbox": mode,
            "cgroup": cgroup,
        }
        sup.write_json_atomic(exec_dir / HANDLE_FILE, handle)
        return handle

    @classmethod
    def _reap_finished(cls) -> None:
        """Reap supervisors this process started whose executions another process polled.

        A Celery worker process may start an execution and never poll it again: without this,
        every such supervisor would stay a zombie until that process exits.
        """
        for execution_id, proc in list(cls._children.items()):
            if proc.poll() is not None:
                cls._children.pop(execution_id, None)

    def _supervisor_alive(self, handle: dict[str, Any]) -> bool:
        pid = handle.get("pid")
        if not pid:
            return False
        proc = self._children.get(handle["execution_id"])
        if proc is not None and proc.pid == pid:
            # Ours: poll() reaps it, so no zombie is left behind.
            return proc.poll() is None
        return sup.proc_alive(pid, handle.get("start_time"))

    def _forget(self, handle: dict[str, Any]) -> None:
        proc = self._children.pop(handle.get("execution_id", ""), None)
        if proc is not None and proc.pid == handle.get("pid"):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0)

    def _output_size(self, exec_dir: Path) -> int:
        try:
            return (exec_dir / OUTPUT_FILE).stat().st_size
        except OSError:
            return 0

    def _hard_kill(self, handle: dict[str, Any]) -> None:
        """Kill everything of the execution without the supervisor's help."""
        exec_dir = Path(handle["dir"])
        sup.cgroup_kill(handle.get("cgroup"))
        with contextlib.suppress(OSError, ValueError, KeyError):
            child = json.loads((exec_dir / sup.CHILD_FILE).read_text())
            if sup.proc_alive(child["pid"], child["start_time"]):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child["pid"], signal.SIGKILL)
        if handle.get("pid"):
            sup.kill_checked(handle["pid"], handle.get("start_time"), signal.SIGKILL)
        if not handle.get("cgroup"):
            sup.kill_by_marker(handle["execution_id"])
        sup.cgroup_remove(handle.get("cgroup"))

    def _stop(self, handle: dict[str, Any], reason: str) -> None:
        """Stop the execution for ``reason`` and wait until it has ended (a few seconds at most)."""
        exec_dir = Path(handle["dir"])
        if (exec_dir / sup.EXIT_FILE).exists() or not exec_dir.exists():
            return
        sup.write_stop(exec_dir, reason)
        if self._supervisor_alive(handle):
            sup.kill_checked(handle["pid"], handle.get("start_time"), signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while time.monotonic() < deadline:
            if (exec_dir / sup.EXIT_FILE).exists() or not self._supervisor_alive(handle):
                break
            time.sleep(0.05)
        else:
            logger.warning("execution %s: supervisor did not stop in time; killing", handle["execution_id"])
        if not (exec_dir / sup.EXIT_FILE).exists():
            self._hard_kill(handle)
        self._supervisor_alive(handle)  # reaps it when it is ours

    def poll(self, handle: dict[str, Any]) -> ExecutionState:
        exec_dir = Path(handle["dir"])
        outcome = self._read_exit(exec_dir)
        if outcome is None and self._supervisor_alive(handle):
            # The supervisor enforces both limits itself; this is the fallback if it cannot.
            if time.time() > handle["started_at"] + handle["timeout"] + TIMEOUT_GRACE_SECONDS:
                self._stop(handle, "timeout")
            elif self._output_size(exec_dir) > handle["max_output_bytes"]:
                self._stop(handle, "output")
            else:
                return ExecutionState(running=True)
            outcome = self._read_exit(exec_dir)
        if outcome is None:
            # The supervisor is gone without a word: it was killed. Make sure nothing is left.
            self._hard_kill(handle)
            outcome = {"exit_code": None, "reason": sup.read_stop(exec_dir)}
        self._supervisor_alive(handle)
        reason = outcome.get("reason")
        return ExecutionState(
            running=False,
            exit_code=outcome.get("exit_code"),
            timed_out=reason == "timeout",
            oom_killed=bool(outcome.get("oom_killed")),
            output_truncated=reason == "output" or self._output_size(exec_dir) >= handle["max_output_bytes"],
            peak_memory_kb=outcome.get("peak_memory_kb"),
            cancelled=reason == "cancel",
        )

    @staticmethod
    def _read_exit(exec_dir: Path) -> dict[str, Any] | None:
        try:
            return json.loads((exec_dir / sup.EXIT_FILE).read_text())
        except (OSError, ValueError):
            return None

    def read_output(self, handle: dict[str, Any], offset: int) -> tuple[str, int]:
        limit = int(handle["max_output_bytes"]) - offset
        if limit <= 0:
            return "", offset
        try:
            with open(Path(handle["dir"]) / OUTPUT_FILE, "rb") as fh:
                fh.seek(offset)
                data = fh.read(min(limit, READ_CHUNK_BYTES))
        except OSError:
            return "", offset
        return decode_prefix(data, offset)

    def cancel(self, handle: dict[str, Any]) -> None:
        self._stop(handle, "cancel")

    def cleanup(self, handle: dict[str, Any]) -> None:
        exec_dir = Path(handle["dir"])
        if exec_dir.exists() and exec_dir.parent.resolve() != self.executions_dir:
            raise ValueError(f"not an execution folder of this runtime: {exec_dir}")
        if handle.get("pid"):
            self._stop(handle, "cleanup")
        sup.cgroup_remove(handle.get("cgroup"))
        self._forget(handle)
        rmtree(exec_dir)

    def orphans(self, known_execution_ids: set[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        if not self.executions_dir.exists():
            return found
        for entry in sorted(self.executions_dir.iterdir()):
            if not entry.is_dir() or entry.name in known_execution_ids:
                continue
            try:
                handle = json.loads((entry / HANDLE_FILE).read_text())
            except (OSError, ValueError):
                handle = {"runtime": self.name, "execution_id": entry.name, "dir": str(entry)}
            found.append(handle)
        return found
