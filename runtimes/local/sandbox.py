"""Running a command in an environment: bubblewrap command lines, cgroups, uids and file rights.

What isolates user code (and the pip of a build) on the worker's machine, strongest available
first: bubblewrap's namespaces and read-only binds, with (as root) read-only overlays of each
execution's own over what executions share, so no lock or open of a shared file reaches another
(:data:`_SETUP_AND_DROP_PRIVILEGES`); a cgroup per execution where
``/sys/fs/cgroup`` is writable; when the worker is root, a uid of its own per running execution
(:class:`ExecutionUids`), file rights that keep the platform's data from it
(:func:`harden_data_dir`, :func:`grant_read`) and the removal of what it left in the shared
temporary folders (:func:`remove_files_of`). Nothing here starts a process of the user:
:mod:`runtimes.local.executions` and :mod:`runtimes.local.environments` ask for the command lines
and run them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import struct
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from runtimes.base import RuntimeUnavailable
from runtimes.local.handles import LocalBuildHandle, LocalConfig

logger = logging.getLogger(__name__)

# Inside the sandbox /tmp is a private tmpfs, so the usual shared-/tmp worries do not apply.
SANDBOX_TMP = "/tmp"  # noqa: S108
# The folders every user may write to: private tmpfs in the sandbox, cleaned of an execution's
# files at its cleanup without one.
SHARED_TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108
SANDBOX_MODES = ("bwrap", "none")
# The folders of the data directory that executions must be able to reach (never list); the
# rest (database, media, broker, secrets) is closed to other users.
EXECUTION_DIRS = ("envs", "builds", "executions")
TRAVERSE_ONLY = 0o711

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

# Where the per-execution overlays get their second (empty) lower layer: overlayfs wants two
# without an upper one. Made by bubblewrap in the sandbox's own root, read-only for user code.
_EMPTY_LAYER = "/run/planqk-empty"
# Where the setup makes an execution's own device nodes (a tmpfs it mounts, binds from, and
# detaches before the runner starts).
_PRIVATE_FILES = "/run/planqk-private"
# What bubblewrap's --dev binds from the host's /dev (one inode for every execution and the host).
_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
# Where the folders holding shared files (of /etc) are bound for the setup alone, to be overlaid.
_STAGE = "/run/planqk-stage"
_SETUP_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN", "CAP_SETPCAP", "CAP_MKNOD")

# Runs inside the sandbox as root with _SETUP_CAPS and nothing else, before any code of the
# user. A fixed string: nothing of the user reaches it but argv values (uid, gid and the folders
# and files the platform chose).
#
# 1. It gives the execution inodes of its own for everything it shares with other executions
#    and the host, so flock() and inotify on them reach no one else (on bind mounts, every
#    execution of a build shared the same inodes: a lock or an open in one was seen by another,
#    a channel without a byte of writable state): a read-only overlay over every shared folder
#    (system, interpreter, environment, code); every shared file (of /etc) bound from an overlay
#    (of the folder it is in, bound under _STAGE for the setup alone and detached after; not a
#    copy, which RLIMIT_FSIZE, the output cap, may forbid); a device node of its own for each of
#    /dev's. All in the execution's own mount namespace.
# 2. It drops every capability: the bounding set, the ambient set, then the uid switch clears
#    the effective and permitted sets, and capset() the inheritable one. It checks the result
#    in /proc/self/status and refuses to run anything if a capability is left.
# 3. It becomes the runner.
_SETUP_AND_DROP_PRIVILEGES = r"""
import ctypes, os, sys
args = sys.argv[1:]
uid, gid, count = int(args[0]), int(args[1]), int(args[2])
folders, args = args[3:3 + count], args[3 + count:]
count = int(args[0])
pairs, args = args[1:1 + 2 * count], args[1 + 2 * count:]
count = int(args[0])
stages, runner = args[1:1 + count], args[1 + count:]
libc = ctypes.CDLL(None, use_errno=True)
def fail(what):
    err = ctypes.get_errno()
    sys.stderr.write("sandbox setup: " + what + ": " + os.strerror(err) + "\n")
    os._exit(125)
def mount(source, target, fstype, flags, options, what):
    if libc.mount(source.encode(), target.encode(), fstype, flags, options.encode()) != 0:
        fail(what + " " + target)
def escape(path):
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")
RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND = 1, 2, 4, 8, 32, 4096
for folder in folders:
    options = "ro,lowerdir=" + escape(folder) + ":" + escape(EMPTY_LAYER)
    mount("overlay", folder, b"overlay", RDONLY | NOSUID | NODEV, options, "overlay on")
os.chdir(os.getcwd())  # the working folder was the bind under the new overlay
for source, target in zip(pairs[0::2], pairs[1::2]):
    mount(source, target, None, BIND, "", "bind on")
    mount("none", target, None, REMOUNT | BIND | RDONLY | NOSUID | NODEV, "", "read-only bind on")
for stage in stages:  # its overlay, then its bind: the rest of the folder is not the user's to see
    for _ in range(2):
        if libc.umount2(stage.encode(), 2) != 0:  # MNT_DETACH: the binds made from it stay
            fail("detaching " + stage)
mount("tmpfs", PRIVATE, b"tmpfs", NOSUID | NOEXEC, "mode=0755,size=64k", "tmpfs on")
for name, major, minor in DEVICES:
    node = PRIVATE + "/" + name
    os.mknod(node, 0o20666, os.makedev(major, minor))
    os.chmod(node, 0o666)
    mount(node, "/dev/" + name, None, BIND, "", "bind on")
if libc.umount2(PRIVATE.encode(), 2) != 0:  # MNT_DETACH: the binds stay
    fail("detaching " + PRIVATE)
cap = 0
while libc.prctl(24, cap, 0, 0, 0) == 0:  # PR_CAPBSET_DROP, up to the last capability
    cap += 1
if cap == 0 or ctypes.get_errno() != 22:
    fail("dropping the capability bounding set")
if libc.prctl(47, 4, 0, 0, 0) != 0:  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    fail("clearing the ambient capabilities")
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
if libc.capset(header, (ctypes.c_uint32 * 6)()) != 0:
    fail("clearing the capabilities")
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("Cap") and int(line.split()[1], 16):
            sys.stderr.write("sandbox setup: a capability is left: " + line)
            os._exit(125)
os.execv(runner[0], runner)
"""
for _name, _value in (("EMPTY_LAYER", _EMPTY_LAYER), ("PRIVATE", _PRIVATE_FILES), ("DEVICES", _DEVICES)):
    _SETUP_AND_DROP_PRIVILEGES = _SETUP_AND_DROP_PRIVILEGES.replace(_name, repr(_value))


class Bwrap:
    """A bubblewrap command line under construction.

    bubblewrap creates a bind target's missing parents as 0700 when run as root: they are made
    0711 here first, so an unprivileged uid can reach the mount (but not list its neighbours).
    """

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.made: set[str] = {"/", SANDBOX_TMP}
        # Every mount target, and the read-only folders and files of the host every execution sees.
        self.targets: list[str] = [SANDBOX_TMP]
        self.shared: list[str] = []
        self.shared_files: list[tuple[str, str]] = []

    def parents(self, target: str) -> None:
        for parent in reversed(Path(target).parents):
            if str(parent) not in self.made:
                self.made.add(str(parent))
                # Passable, not listable: what else is bound there is none of the user's business.
                self.args.extend(["--perms", "0711", "--dir", str(parent)])

    def bind(self, option: str, source: str, target: str) -> None:
        self.parents(target)
        self.targets.append(target)
        self.args.extend([option, source, target])

    def share(self, option: str, source: str, target: str) -> None:
        """A read-only bind of a host folder every execution sees (never one of its own)."""
        self.bind(option, source, target)
        if os.path.isdir(source) and not os.path.islink(source):
            self.shared.append(target)
        elif os.path.isfile(source):
            self.shared_files.append((source, target))

    def tmpfs(self, target: str, size: int) -> None:
        """A private, world-writable (sticky) tmpfs of at most ``size`` bytes."""
        self.parents(target)
        self.made.add(target)
        self.targets.append(target)
        self.args.extend(["--perms", "1777", "--size", str(size), "--tmpfs", target])

    def overlays(self) -> list[str]:
        """The shared folders an execution gets an overlay of, parents first.

        A folder with another mount inside it (the execution's own input, say, when the data
        directory is under /usr) keeps its bind: an overlay shows a single mount, and would hide it.
        """
        shared = list(dict.fromkeys(self.shared))
        others = [t for t in self.targets if t not in shared]
        return sorted(
            (folder for folder in shared if not any(Path(folder) in Path(t).parents for t in others)),
            key=lambda folder: len(Path(folder).parts),
        )

    def file_binds(self, overlays: list[str]) -> tuple[list[str], list[str]]:
        """How the setup binds each shared file from an overlay: (source, target) pairs, and stages.

        A file inside an overlaid folder (/etc/localtime is a link into /usr) is bound from
        there; any other from an overlay of its folder, bound under _STAGE (bubblewrap binds
        here, the setup overlays it and detaches both once the files are bound).
        """
        pairs: list[str] = []
        stages: dict[str, str] = {}
        for source, target in dict.fromkeys(self.shared_files):
            real = os.path.realpath(source)
            if not any(Path(folder) in Path(real).parents for folder in overlays):
                folder = os.path.dirname(real)
                if folder not in stages:
                    stages[folder] = f"{_STAGE}/{len(stages)}"
                    self.bind("--ro-bind", folder, stages[folder])
                real = f"{stages[folder]}/{os.path.basename(real)}"
            pairs += [real, target]
        return pairs, list(stages.values())

    def system(self, etc_files: tuple[str, ...], python_prefix: str) -> None:
        """The system folders, the given files of /etc and the interpreter, all read-only."""
        for name in _SYSTEM_DIRS:
            path = Path("/") / name
            if path.is_symlink():
                self.args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                self.args += ["--ro-bind", str(path), str(path)]
                self.targets.append(str(path))
                self.shared.append(str(path))
        for name in etc_files:
            self.share("--ro-bind-try", f"/etc/{name}", f"/etc/{name}")
        if not python_prefix.startswith("/usr/") and python_prefix != "/usr":
            self.share("--ro-bind", python_prefix, python_prefix)


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


def isolation_gaps(mode: str, as_root: bool) -> str:
    """What isolation executions lack in ``mode``, in words for operators (empty: nothing)."""
    if mode == "bwrap":
        return ""
    if not as_root:
        return (
            "PLANQK_SANDBOX=none and the worker is not root: user code runs as the worker's own "
            "user with all its rights. It can read and change the database, the data directory, "
            "the platform's secrets and every other execution (its input, output and provider "
            "tokens), signal the worker and other executions, and use the network. Only resource "
            "limits apply. Concurrent executions open the same files (their code, environment, the "
            "interpreter and the system): a lock one takes on them (flock) or an open that another "
            "watches (inotify) is a channel between them."
        )
    return (
        "PLANQK_SANDBOX=none: executions run without bubblewrap. Each still has a uid of its own, "
        "no network, a private TMPDIR and resource limits, and cannot read the platform's data, "
        "but it sees the host's file system (whatever every user may read) and the host's process "
        "list, and shares /tmp, /dev/shm and /var/tmp with the host until its cleanup. Concurrent "
        "executions open the same files (their code, environment, the interpreter and the system): "
        "a lock one takes on them (flock) or an open that another watches (inotify) is a channel "
        "between them."
    )


def harden_data_dir(data_dir: Path) -> None:
    """Close the data directory to other users, except the way to what executions may read.

    The database, uploads, the broker's messages and the install's keys are the worker's alone
    (the "other" bits go); ``envs``, ``builds`` and ``executions`` and the directory itself can
    be passed through but not listed. Only what this process owns is changed.
    """
    me = os.geteuid()
    with contextlib.suppress(OSError):
        st = data_dir.stat()
        if st.st_uid == me:
            os.chmod(data_dir, (stat.S_IMODE(st.st_mode) & ~0o007) | 0o001)
    try:
        entries = list(os.scandir(data_dir))
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode) or st.st_uid != me:
                continue
            if entry.name in EXECUTION_DIRS and stat.S_ISDIR(st.st_mode):
                mode = TRAVERSE_ONLY
            else:
                mode = stat.S_IMODE(st.st_mode) & ~0o007
            if mode != stat.S_IMODE(st.st_mode):
                os.chmod(entry.path, mode)


# --- read access for one uid (POSIX ACLs) ---------------------------------------------------

_ACL_XATTR = "system.posix_acl_access"
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = 1, 2, 4, 8, 16, 32
_ACL_UNDEFINED_ID = 0xFFFFFFFF


def _acl_entries(path: str) -> list[tuple[int, int, int]]:
    """The access ACL of ``path`` as (tag, perm, id), or the one its mode bits stand for."""
    try:
        raw = os.getxattr(path, _ACL_XATTR, follow_symlinks=False)
    except OSError:
        raw = b""
    if len(raw) >= 4:
        return [struct.unpack_from("<HHI", raw, 4 + 8 * i) for i in range((len(raw) - 4) // 8)]
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    return [
        (_ACL_USER_OBJ, (mode >> 6) & 7, _ACL_UNDEFINED_ID),
        (_ACL_GROUP_OBJ, (mode >> 3) & 7, _ACL_UNDEFINED_ID),
        (_ACL_OTHER, mode & 7, _ACL_UNDEFINED_ID),
    ]


def _acl_write(path: str, entries: list[tuple[int, int, int]], mask: int = 5) -> None:
    named = [e for e in entries if e[0] in (_ACL_USER, _ACL_GROUP)]
    plain = [e for e in entries if e[0] not in (_ACL_USER, _ACL_GROUP, _ACL_MASK)]
    if named:
        plain.append((_ACL_MASK, mask, _ACL_UNDEFINED_ID))
    ordered = sorted(plain + named, key=lambda e: (e[0], e[2]))
    os.setxattr(path, _ACL_XATTR, struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in ordered))


def grant_read(path: str, uid: int) -> bool:
    """Let ``uid`` (alone among other users) read and enter the folder ``path``: mode 0750 + an ACL entry.

    Only the top folder is closed; what is inside stays readable, so one entry is enough for
    the whole tree. False where the file system has no ACLs (the folder then stays open to all).
    """
    entries = [e for e in _acl_entries(path) if not (e[0] == _ACL_USER and e[2] == uid)]
    entries = [(t, 0 if t == _ACL_OTHER else p, i) for t, p, i in entries]
    entries.append((_ACL_USER, 5, uid))
    try:
        _acl_write(path, entries)
    except OSError as exc:
        logger.warning("no ACLs on %s (%s): it stays readable by every user", path, exc)
        os.chmod(path, 0o755)  # noqa: S103 - the code and environment of a service, read-only
        return False
    return True


def revoke_read(path: str, uid: int) -> None:
    """Take back what :func:`grant_read` gave ``uid``."""
    with contextlib.suppress(OSError):
        entries = [e for e in _acl_entries(path) if not (e[0] == _ACL_USER and e[2] == uid)]
        _acl_write(path, entries)


def grant_group(path: str, gid: int, perm: int) -> bool:
    """Give group ``gid`` at least ``perm`` (r=4, x=1) on ``path`` with an ACL entry; True if changed.

    Nothing else changes: the mask is widened just enough for the new entry, so the owner's
    group and every other entry keep exactly the rights they had.
    """
    entries = _acl_entries(path)
    old = next((p for t, p, i in entries if t == _ACL_GROUP and i == gid), 0)
    if old | perm == old:
        return False
    old_mask = next((p for t, p, _ in entries if t == _ACL_MASK), None)
    if old_mask is None:
        old_mask = next((p for t, p, _ in entries if t == _ACL_GROUP_OBJ), 0)
    entries = [e for e in entries if not (e[0] == _ACL_GROUP and e[2] == gid)]
    entries.append((_ACL_GROUP, old | perm, gid))
    _acl_write(path, entries, mask=old_mask | perm)
    return True


def _grant_tree(root: str, gid: int) -> list[str]:
    """``r-X`` for ``gid`` on every folder and file under ``root`` that other users cannot read (links skipped)."""
    changed: list[str] = []
    for folder, _dirs, files in os.walk(root):
        for path in (folder, *(os.path.join(folder, name) for name in files)):
            st = os.lstat(path)
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                continue
            need = 5 if stat.S_ISDIR(st.st_mode) or st.st_mode & 0o111 else 4
            if st.st_mode & need != need and grant_group(path, gid, need):
                changed.append(path)
    return changed


def _grant_passage(path: str, gid: int) -> list[str]:
    """``--x`` for ``gid`` on every parent folder of ``path`` that other users cannot pass: passable, not listable."""
    changed: list[str] = []
    for parent in reversed(Path(path).parents):
        if not os.stat(parent).st_mode & stat.S_IXOTH and grant_group(str(parent), gid, 1):
            changed.append(str(parent))
    return changed


def check_execution_group(gid: int, first_uid: int, last_uid: int) -> None:
    """RuntimeUnavailable unless ``gid`` is fit to be every execution's supplementary group."""
    import grp

    if not 1000 <= gid < 2**32 - 1 or first_uid <= gid <= last_uid:
        raise RuntimeUnavailable(
            f"PLANQK_EXECUTION_GROUP={gid}: pick a gid above 999 and outside PLANQK_EXECUTION_UIDS"
        )
    with contextlib.suppress(KeyError):
        name = grp.getgrgid(gid).gr_name
        # A group of the host may own files: executions would get its rights.
        raise RuntimeUnavailable(f"PLANQK_EXECUTION_GROUP={gid} is the host's group {name!r}: pick an unused gid")


def probe_interpreter(python: str, uid: int, gid: int, groups: Sequence[int]) -> str | None:
    """None when ``python`` starts and imports its standard library as ``uid``, else why not."""
    try:
        probe = subprocess.run(
            [python, "-I", "-c", "import encodings, json, os"],
            user=uid,
            group=gid,
            extra_groups=list(groups),
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return None if probe.returncode == 0 else (probe.stderr.strip()[-400:] or f"exit code {probe.returncode}")


INTERPRETER_RECORD = "interpreter-access"


def open_interpreter(
    python: str, prefix: str, *, gid: int, probe_uid: int, record: Path, keep_out: Sequence[Path] = ()
) -> str:
    """Let the executions' group ``gid`` run ``python``: what the worker did, in one line for its log.

    Without bubblewrap user code runs the interpreter the environments were made from as its
    own uid. Where other users cannot read it (a Python in root's 0700 home), the group gets
    ``r-X`` on the base prefix itself and on everything in its ``bin`` and ``lib`` that other
    users cannot read, and ``--x`` on each parent folder other users cannot pass (passable, not
    listable): ACL entries, nothing else of the host changes. ``record`` notes what was granted
    (it is not redone while it works). The platform's folders ``keep_out`` are never opened:
    an interpreter inside one is refused. RuntimeUnavailable when the interpreter still does
    not run as ``probe_uid`` with the group.
    """
    python, prefix = os.path.realpath(python), os.path.realpath(prefix)
    if probe_interpreter(python, probe_uid, probe_uid, [gid]) is None:
        granted = record.is_file() and f"{prefix} gid={gid}" in record.read_text()
        if granted:
            return f"interpreter {prefix}: readable by group {gid} of executions (granted earlier, see {record})"
        return f"interpreter {prefix}: readable by every user, nothing granted"
    trees = [Path(prefix, sub) for sub in ("bin", "lib", "lib64")]
    for folder in keep_out:
        folder = Path(os.path.realpath(folder))
        inside = [path for path in (Path(prefix), Path(python)) if path == folder or folder in path.parents]
        if inside or any(tree == folder or tree in folder.parents for tree in trees):
            raise RuntimeUnavailable(
                f"the interpreter {python} is inside or above the platform's folder {folder}: "
                "user code could read the platform's data; set PLANQK_LOCAL_PYTHON to one elsewhere"
            )
    changed: list[str] = []
    try:
        changed += _grant_passage(prefix, gid)
        st = os.stat(prefix)
        if st.st_mode & 0o005 != 0o005 and grant_group(prefix, gid, 5):
            changed.append(prefix)
        for tree in trees:
            if tree.is_dir() and not tree.is_symlink():
                changed += _grant_tree(str(tree), gid)
        if Path(prefix) not in Path(python).parents:
            changed += _grant_passage(python, gid)
            if os.stat(python).st_mode & 0o005 != 0o005 and grant_group(python, gid, 5):
                changed.append(python)
    except OSError as exc:
        raise RuntimeUnavailable(f"cannot give executions read access to the interpreter {prefix}: {exc}") from exc
    record.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(record, "a") as fh:
        fh.write(f"{prefix} gid={gid} {len(changed)} ACL entries: {' '.join(changed[:20])}\n")
    problem = probe_interpreter(python, probe_uid, probe_uid, [gid])
    if problem is not None:
        raise RuntimeUnavailable(
            f"{python} does not run as another user even after granting group {gid} read access ({problem}): "
            "build environments from a Python installed where every user can read it (PLANQK_LOCAL_PYTHON), "
            "or use bubblewrap (PLANQK_SANDBOX=bwrap)"
        )
    passed = [path for path in changed if not path.startswith(prefix + os.sep) and path != prefix]
    return (
        f"interpreter {prefix}: other users could not read it; granted group {gid} of executions "
        f"r-X on it ({len(changed) - len(passed)} ACL entries) and --x on {', '.join(passed) or 'no parent folder'} "
        f"(recorded in {record})"
    )


# --- one uid per running execution -----------------------------------------------------------


def uids_running() -> set[int]:
    """Every real, effective, saved or file-system uid of a process on this host."""
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{entry.name}/status").read_text().splitlines():
                if line.startswith("Uid:"):
                    found.update(int(v) for v in line.split()[1:])
                    break
    return found


def remove_files_of(uid: int, roots: tuple[str, ...] = SHARED_TMP_DIRS) -> list[str]:
    """Remove what ``uid`` owns in the world-writable folders ``roots`` (its processes must be gone).

    Only folders that every user may write to are searched: ``uid`` can have files nowhere
    else in them. Links are removed, never followed.
    """
    removed: list[str] = []

    def visit(folder: str) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_uid == uid:
                removed.append(entry.path)
                with contextlib.suppress(OSError):
                    if stat.S_ISDIR(st.st_mode):
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
            elif stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH:
                visit(entry.path)

    for root in roots:
        with contextlib.suppress(OSError):
            if os.lstat(root).st_mode & stat.S_IWOTH:
                visit(root)
    return removed


DEFAULT_UID_CLAIMS_DIR = Path("/run/planqk/execution-uids")


@dataclass(frozen=True)
class _Claim:
    execution_id: str
    exec_dir: str
    granted: tuple[str, ...]

    @classmethod
    def read(cls, path: Path) -> _Claim:
        execution_id, exec_dir, *granted = path.read_text().splitlines()
        return cls(execution_id, exec_dir, tuple(g for g in granted if g))

    def text(self) -> str:
        return "\n".join([self.execution_id, self.exec_dir, *self.granted]) + "\n"


@dataclass(frozen=True)
class ExecutionUids:
    """Hands each running execution a uid of its own from ``first``..``last``.

    A claim is a file ``<claims_dir>/<uid>`` naming the execution, its folder and the folders
    it was let read (:func:`grant_read`), made under a lock shared by every worker of the host
    (the default folder is in ``/run``), so two concurrent executions never share a uid. Claims
    rotate through the range, so a released uid is reused as late as possible. A claim whose
    execution folder is gone and whose uid runs nothing is stale (a worker died): it is taken
    over after its processes, files and rights are gone. Releasing kills whatever still runs
    as the uid, removes its files from the shared temporary folders and takes back its rights.
    """

    first: int
    last: int
    claims_dir: Path = DEFAULT_UID_CLAIMS_DIR

    @staticmethod
    def parse(spec: str) -> tuple[int, int]:
        """``"200000-265535"`` as ``(200000, 265535)``; ValueError for anything else."""
        first, sep, last = spec.partition("-")
        if not sep or not first.strip().isdigit() or not last.strip().isdigit():
            raise ValueError(f"a uid range is FIRST-LAST, not {spec!r}")
        low, high = int(first), int(last)
        if not 1000 <= low <= high < 2**32 - 1:
            raise ValueError(f"uid range {spec!r} must be ascending, above 999 and below 4294967295")
        return low, high

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.claims_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.claims_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _claims(self) -> dict[int, _Claim]:
        claims: dict[int, _Claim] = {}
        for entry in os.scandir(self.claims_dir):
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError):
                    claims[int(entry.name)] = _Claim.read(Path(entry.path))
        return claims

    def _free(self, uid: int, claim: _Claim | None) -> None:
        from runtimes.local.supervisor import kill_uid

        kill_uid(uid)
        remove_files_of(uid)
        if claim is not None:
            for path in claim.granted:
                revoke_read(path, uid)
        (self.claims_dir / str(uid)).unlink(missing_ok=True)

    def claim(self, execution_id: str, exec_dir: Path, readable: tuple[str, ...] = ()) -> int:
        """A free uid for ``execution_id``, which may read the folders ``readable`` until released."""
        with self._locked():
            claims = self._claims()
            for uid, old in list(claims.items()):
                if old.execution_id == execution_id:  # a retried start
                    self._free(uid, old)
                    del claims[uid]
            running = uids_running()
            size = self.last - self.first + 1
            try:
                start = int((self.claims_dir / ".next").read_text())
            except (OSError, ValueError):
                start = self.first
            for step in range(size):
                uid = self.first + (start - self.first + step) % size
                old = claims.get(uid)
                if uid in running or (old is not None and os.path.isdir(old.exec_dir)):
                    continue
                if old is not None:
                    logger.info("uid %d: taking over the stale claim of %s", uid, old.execution_id)
                self._free(uid, old)
                granted = tuple(path for path in readable if grant_read(path, uid))
                (self.claims_dir / str(uid)).write_text(_Claim(execution_id, str(exec_dir), granted).text())
                (self.claims_dir / ".next").write_text(str(uid + 1))
                return uid
        raise RuntimeUnavailable(f"all {size} execution uids ({self.first}-{self.last}) are in use")

    def move(self, old_id: str, new_id: str, exec_dir: Path) -> int | None:
        """Hand the claim of ``old_id`` (a warm runner) to ``new_id``, whose folder it now is."""
        if not self.claims_dir.is_dir():
            return None
        with self._locked():
            for uid, claim in self._claims().items():
                if claim.execution_id == old_id:
                    (self.claims_dir / str(uid)).write_text(_Claim(new_id, str(exec_dir), claim.granted).text())
                    return uid
        return None

    def release(self, execution_id: str) -> int | None:
        """Free the uid of ``execution_id`` (idempotent): the uid it had, or None."""
        if not self.claims_dir.is_dir():
            return None
        with self._locked():
            for uid, claim in self._claims().items():
                if claim.execution_id == execution_id:
                    self._free(uid, claim)
                    return uid
        return None


class Sandbox:
    """How this host isolates user code, probed once: bubblewrap, cgroups, the uid to run as."""

    _bwrap_checked: ClassVar[dict[tuple[str, bool, str, str], str | None]] = {}
    # Interpreters opened to the executions' group by this process: once per worker start.
    _interpreters_opened: ClassVar[set[tuple[str, str, int]]] = set()

    def __init__(self, config: LocalConfig, python_prefix: Callable[[], str]) -> None:
        self.config = config
        self.python_prefix = python_prefix
        self._cgroups: Cgroups | bool | None = False  # False: not detected yet

    def uids(self) -> ExecutionUids | None:
        """Where a root worker gets each execution's uid; None for other workers (they cannot switch)."""
        if os.geteuid() != 0:
            return None
        try:
            first, last = ExecutionUids.parse(self.config.execution_uids)
        except ValueError as exc:
            raise RuntimeUnavailable(f"PLANQK_EXECUTION_UIDS: {exc}") from None
        return ExecutionUids(first, last, Path(self.config.uid_claims_dir or DEFAULT_UID_CLAIMS_DIR))

    def open_interpreter(self, uids: ExecutionUids) -> None:
        """Without bubblewrap: make sure every execution (by its group) can run the interpreter.

        Once per process; :func:`open_interpreter` says in the log what it found or granted.
        """
        gid = self.config.execution_group
        key = (os.path.realpath(self.config.python), self.python_prefix(), gid)
        if key in self._interpreters_opened:
            return
        check_execution_group(gid, uids.first, uids.last)
        data_dir = Path(self.config.data_dir)
        record = uids.claims_dir / INTERPRETER_RECORD
        line = open_interpreter(key[0], key[1], gid=gid, probe_uid=uids.first, record=record, keep_out=(data_dir,))
        logger.warning("%s", line)
        self._interpreters_opened.add(key)

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
        key = (bwrap, as_root, self.config.python, str(self.config.data_dir))
        if key not in self._bwrap_checked:
            # The options executions rely on, so an old bubblewrap fails here and not in a job.
            args = [bwrap, "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "--perms", "1777"]
            args += ["--size", "1048576", "--tmpfs", SANDBOX_TMP, "--die-with-parent", "--new-session"]
            command = ["true"]
            if as_root:
                # And the setup every execution runs first: overlays (of /usr, of the data
                # directory where environments and code are, of /etc for its files), the drop of
                # every capability, the uid switch. Without overlayfs, or with a data directory
                # overlayfs cannot stack on, this fails here and not in every job.
                args += ["--cap-drop", "ALL"]
                for cap in _SETUP_CAPS:
                    args += ["--cap-add", cap]
                args += ["--tmpfs", "/run", "--perms", "0555", "--dir", _EMPTY_LAYER, "--dir", _PRIVATE_FILES]
                args += ["--ro-bind", "/etc", f"{_STAGE}/0"]
                setup = [self.config.python, "-I", "-S", "-c", _SETUP_AND_DROP_PRIVILEGES, "65534", "65534"]
                folders = ["/usr", f"{_STAGE}/0"]
                if os.path.isdir(self.config.data_dir):
                    data_dir = os.path.realpath(self.config.data_dir)
                    args += ["--ro-bind", data_dir, data_dir]  # it may be under the probe's /tmp
                    folders.append(data_dir)
                setup += [str(len(folders)), *folders, "1", f"{_STAGE}/0/passwd", "/etc/passwd", "1", f"{_STAGE}/0"]
                command = [*setup, "/bin/true"]
            else:
                args.append("--unshare-user")
            try:
                probe = subprocess.run([*args, "--", *command], capture_output=True, text=True, timeout=30)
                problem = None if probe.returncode == 0 else f"bubblewrap fails here: {probe.stderr.strip()}"
            except (OSError, subprocess.SubprocessError) as exc:
                problem = f"bubblewrap fails here: {exc}"
            self._bwrap_checked[key] = problem
        return self._bwrap_checked[key]

    def mode(self) -> tuple[str, str]:
        """``("bwrap", "")`` or ``("none", "PLANQK_SANDBOX=none")`` according to ``PLANQK_SANDBOX``.

        Without a sandbox only by the operator's choice: where bubblewrap is wanted (the
        default) but does not work, this raises, and nothing runs unsandboxed.
        """
        wanted = self.config.sandbox
        if wanted not in SANDBOX_MODES:
            raise RuntimeUnavailable(f"PLANQK_SANDBOX must be bwrap or none, not {wanted!r}")
        if wanted == "none":
            return "none", "PLANQK_SANDBOX=none"
        problem = self.problem()
        if problem is None:
            return "bwrap", ""
        raise RuntimeUnavailable(
            f"PLANQK_SANDBOX=bwrap but {problem}: install bubblewrap (scripts/ensure-sandbox.py "
            "says how), or set PLANQK_SANDBOX=none to run user code without a sandbox"
        )

    def line(self) -> str:
        """One line for logs and the settings page saying how user code is isolated."""
        mode, why = self.mode()
        if mode == "bwrap":
            if os.geteuid() == 0:
                return (
                    "sandbox: bubblewrap (no network, read-only system, private /tmp, /var/tmp and /dev/shm, "
                    "read-only files of its own)"
                )
            # Unprivileged, execution_argv mounts no overlays: say what that leaves open.
            return (
                "sandbox: bubblewrap (no network, read-only system, private /tmp, /var/tmp and /dev/shm; "
                "the worker is not root: concurrent executions share the read-only files, so a lock or "
                "an open of one is seen by another)"
            )
        return f"sandbox: none ({why}): {isolation_gaps(mode, os.geteuid() == 0)}"

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
            # Unprivileged: bubblewrap needs a user namespace for everything else. No overlays
            # here: with --dev, a mount inside bubblewrap's user namespace fails (EPERM, seen
            # with bubblewrap 0.8 even with --cap-add CAP_SYS_ADMIN), so concurrent executions
            # share the inodes of the read-only folders (Sandbox.line says so).
            args.append("--unshare-user")
        else:
            # Root: keep only what the setup before the runner needs (_SETUP_AND_DROP_PRIVILEGES:
            # the overlays, then the drop of every capability and of root).
            args += ["--cap-drop", "ALL"]
            for cap in _SETUP_CAPS:
                args += ["--cap-add", cap]
        # --die-with-parent ties the sandbox to the supervisor, never to the worker, so a
        # restarted worker finds the execution still running and a killed supervisor leaves
        # nothing behind. --new-session keeps user code away from any terminal.
        args += ["--die-with-parent", "--new-session", "--hostname", "planqk"]
        # /tmp and /var/tmp live in memory: bound them like memory, or they are a way around the
        # memory limit. Mounted first, so the binds below stay visible when the data folder is
        # under one of them.
        args += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", SANDBOX_TMP]
        mounts = Bwrap(args)
        mounts.tmpfs("/var/tmp", tmp_bytes)  # noqa: S108
        mounts.system(_ETC_FILES, self.python_prefix())
        bind = mounts.bind
        bind("--ro-bind", str(exec_dir / "etc" / "passwd"), "/etc/passwd")
        bind("--ro-bind", str(exec_dir / "etc" / "group"), "/etc/group")
        # The environment is shared by every version with its requirements, the code by every
        # execution of the version: overlays of their own below (the channel they would be).
        mounts.share("--ro-bind", build.env_dir, build.env_dir)
        mounts.share("--ro-bind", build.build_dir, build.build_dir)
        bind("--ro-bind", str(exec_dir / "input"), str(exec_dir / "input"))
        bind("--bind", str(exec_dir / "output"), str(exec_dir / "output"))
        args += ["--proc", "/proc", "--dev", "/dev"]
        # bubblewrap's /dev has a plain /dev/shm folder: a tmpfs of its own bounds it too.
        args += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/dev/shm"]  # noqa: S108
        runner = [python, "-m", "planqk_runtime"]
        if uid is None:
            return [*args, "--chdir", build.build_dir, "--", *runner]
        overlays = mounts.overlays()
        pairs, stages = mounts.file_binds(overlays)
        overlays += stages
        mounts.parents(_EMPTY_LAYER)
        args += ["--perms", "0555", "--dir", _EMPTY_LAYER, "--perms", "0555", "--dir", _PRIVATE_FILES]
        args += ["--chdir", build.build_dir, "--"]
        setup = [python, "-I", "-S", "-c", _SETUP_AND_DROP_PRIVILEGES, str(uid), str(gid)]
        setup += [str(len(overlays)), *overlays, str(len(pairs) // 2), *pairs, str(len(stages)), *stages]
        return [*args, *setup, *runner]
