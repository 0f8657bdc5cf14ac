"""Running a command in an environment: bubblewrap command lines, cgroups and uid checks.

What isolates user code (and the pip of a build) on the worker's machine, strongest available
first: bubblewrap's namespaces and read-only binds; a cgroup per execution where
``/sys/fs/cgroup`` is writable; an unprivileged uid when the worker is root. Nothing here starts
a process of the user: :mod:`runtimes.local.executions` and :mod:`runtimes.local.environments`
ask for the command lines and run them.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from runtimes.base import RuntimeUnavailable
from runtimes.local.handles import LocalBuildHandle, LocalConfig

logger = logging.getLogger(__name__)

# Inside the sandbox /tmp is a private tmpfs, so the usual shared-/tmp worries do not apply.
SANDBOX_TMP = "/tmp"  # noqa: S108

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

# What a build's installer needs of /etc besides _ETC_FILES (no name resolution: builds have no network).
_BUILD_ETC_FILES = ("pip.conf", "xdg/pip")

# Runs inside the sandbox as root without other capabilities: drops to the unprivileged uid,
# then becomes the runner. A fixed string: nothing of the user reaches it but argv values.
_DROP_PRIVILEGES = (
    "import os, sys\n"
    "os.setgroups([])\n"
    "os.setgid(int(sys.argv[2]))\n"
    "os.setuid(int(sys.argv[1]))\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


class Bwrap:
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


@dataclass(frozen=True)
class Cgroups:
    """Where this host lets us create cgroups: v2 (one tree) or v1 (one tree per controller)."""

    version: int
    bases: dict[str, Path]

    def for_execution(self, execution_id: str) -> dict[str, str]:
        return {ctrl: str(base / execution_id) for ctrl, base in self.bases.items()}


def cgroup_mounts() -> dict[str, Path]:
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


def detect_cgroups(name: str) -> Cgroups | None:
    """A writable cgroup layout with pids and memory control, or None."""
    mounts = cgroup_mounts()
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
                return Cgroups(2, dict.fromkeys(wanted, base))
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
        return Cgroups(1, bases)
    return None


def accessible_to(path: str, uid: int, gid: int) -> bool:
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


def tasks_of(uid: int) -> int:
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


class Sandbox:
    """How this host isolates user code, probed once: bubblewrap, cgroups, the uid to run as."""

    _bwrap_checked: ClassVar[dict[tuple[str, bool], str | None]] = {}

    def __init__(self, config: LocalConfig, python_prefix: Callable[[], str]) -> None:
        self.config = config
        self.python_prefix = python_prefix
        self._cgroups: Cgroups | bool | None = False  # False: not detected yet

    def cgroups(self) -> Cgroups | None:
        """The cgroup layout executions get, or None where cgroups cannot be written."""
        if self._cgroups is False:
            self._cgroups = detect_cgroups(self.config.cgroup_name) if self.config.use_cgroups else None
        return self._cgroups  # type: ignore[return-value]

    def problem(self) -> str | None:
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

    def mode(self) -> tuple[str, str]:
        """``("bwrap", "")`` or ``("none", why)`` according to ``PLANQK_SANDBOX``."""
        wanted = self.config.sandbox
        if wanted not in ("auto", "bwrap", "none"):
            raise RuntimeUnavailable(f"PLANQK_SANDBOX must be auto, bwrap or none, not {wanted!r}")
        if wanted == "none":
            return "none", "PLANQK_SANDBOX=none"
        problem = self.problem()
        if problem is None:
            return "bwrap", ""
        if wanted == "bwrap":
            raise RuntimeUnavailable(f"PLANQK_SANDBOX=bwrap but {problem}")
        return "none", problem

    def line(self) -> str:
        """One line for logs and the settings page saying how user code is isolated."""
        mode, why = self.mode()
        if mode == "bwrap":
            return "sandbox: bubblewrap (no network, read-only system, private /tmp)"
        return f"sandbox: none ({why}): only resource limits apply"

    def build_argv(
        self,
        env_dir: Path,
        tmp_dir: Path,
        *,
        readable: Sequence[str | Path] = (),
        writable: Sequence[str | Path] = (),
        env_writable: bool = True,
    ) -> list[str]:
        """The bubblewrap command line a build step runs under, or ``[]`` without a sandbox.

        Installing and building run the setup scripts and build backends of what
        requirements.txt names. Inside: no network at all (everything was fetched before, see
        :mod:`runtimes.local.fetch`), the system, the interpreter and ``readable`` (the fetched
        files, the platform's wheel cache, the installer) read-only, and writable only the
        environment being built, ``writable`` and a private /tmp (on disk: wheels can be large).
        The platform's data, settings and the other environments are not there at all.
        """
        if self.mode()[0] != "bwrap":
            return []
        bwrap = shutil.which(self.config.bwrap) or self.config.bwrap
        args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        # As root: no capabilities, so the read-only mounts stay read-only; else a user namespace.
        args += ["--cap-drop", "ALL"] if os.geteuid() == 0 else ["--unshare-user"]
        args += ["--die-with-parent", "--new-session", "--hostname", "planqk-build"]
        mounts = Bwrap(args)
        mounts.bind("--bind", str(tmp_dir), SANDBOX_TMP)
        mounts.system(_ETC_FILES + _BUILD_ETC_FILES, self.python_prefix())
        for path in readable:
            mounts.bind("--ro-bind", str(path), str(path))
        for path in writable:
            mounts.bind("--bind", str(path), str(path))
        mounts.bind("--bind" if env_writable else "--ro-bind", str(env_dir), str(env_dir))
        return [*args, "--proc", "/proc", "--dev", "/dev", "--chdir", SANDBOX_TMP, "--"]

    def execution_argv(
        self,
        *,
        build: LocalBuildHandle,
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
        mounts = Bwrap(args)
        mounts.system(_ETC_FILES, self.python_prefix())
        bind = mounts.bind
        bind("--ro-bind", str(exec_dir / "etc" / "passwd"), "/etc/passwd")
        bind("--ro-bind", str(exec_dir / "etc" / "group"), "/etc/group")
        bind("--ro-bind", build.env_dir, build.env_dir)
        bind("--ro-bind", build.build_dir, build.build_dir)
        bind("--ro-bind", str(exec_dir / "input"), str(exec_dir / "input"))
        bind("--bind", str(exec_dir / "output"), str(exec_dir / "output"))
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--chdir", build.build_dir, "--"]
        runner = [python, "-m", "planqk_runtime"]
        if uid is not None:
            return [*args, python, "-I", "-S", "-c", _DROP_PRIVILEGES, str(uid), str(gid), *runner]
        return [*args, *runner]
