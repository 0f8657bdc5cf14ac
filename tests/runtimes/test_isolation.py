"""Isolation: what a hostile execution can reach of the platform and of another execution.

Every case runs a hostile program on every runtime variant that runs code on this machine (see
conftest.py: bubblewrap, no sandbox as root, rlimits only, Docker) next to an honest execution
of another user that holds a provider token, and asserts on what the other user and the
platform look like afterwards: the victim still SUCCEEDED with its own result, its token was
never read, the platform's files were neither read nor changed, and nothing the hostile program
left in the shared temporary folders survives its cleanup.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from planqk_runtime.protocol import FinalResponse, final_response
from runtimes.base import RuntimeUnavailable
from runtimes.local import LocalConfig, LocalRuntime
from runtimes.local.sandbox import ExecutionUids, _acl_entries, accessible_to, isolation_gaps, uids_running

from .conftest import SYSTEM_PYTHON, RuntimeUnderTest, processes_of

pytestmark = [pytest.mark.slow, pytest.mark.not_external("a provider's service runs on the provider's machine")]

VICTIM = """
import os, time
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    token = os.environ.get("QISKIT_IBM_TOKEN", "")
    print("ready", flush=True)
    for i in range(params["seconds"]):
        time.sleep(1)
        print(f"tick {i}", flush=True)
    return ResultResponse(result={"sum": sum(data["values"]), "token_length": len(token)})
"""

ATTACKER = """
import os, signal
from .libs.return_objects import ResultResponse

def read(path):
    try:
        with open(path, "rb") as fh:
            return "read: " + fh.read(200).decode(errors="replace")
    except OSError as exc:
        return "error: " + type(exc).__name__

def listing(path):
    try:
        return "listed: " + ",".join(sorted(os.listdir(path)))
    except OSError as exc:
        return "error: " + type(exc).__name__

def write(path):
    try:
        with open(path, "a") as fh:
            fh.write("written by another execution\\n")
        return "written"
    except OSError as exc:
        return "error: " + type(exc).__name__

def run(data=None, params=None):
    victim, data_dir = params["victim_dir"], params["data_dir"]
    report = {
        "database": read(os.path.join(data_dir, "db.sqlite3")),
        "secret_key": read(os.path.join(data_dir, "secret-key")),
        "media": read(os.path.join(data_dir, "media", "upload.zip")),
        "data_dir": listing(data_dir),
        "executions": listing(os.path.join(data_dir, "executions")),
        "victim_input": read(os.path.join(victim, "input", "data", "data.json")),
        "victim_launch": read(os.path.join(victim, "launch.json")),
        "victim_env": read(os.path.join(params["victim_env"], "pyvenv.cfg")),
        "victim_code": read(os.path.join(params["victim_code"], "src", "program.py")),
        "write_victim_output": write(os.path.join(victim, "output", "planted.txt")),
        "write_victim_log": write(os.path.join(victim, "output.log")),
        "write_data_dir": write(os.path.join(data_dir, "planted.txt")),
        "write_database": write(os.path.join(data_dir, "db.sqlite3")),
    }
    # Every process this program can see: whose environment it can read (the victim's token
    # would be there), which it may signal, and the victim's, which it tries to kill.
    needle = ("PLANQK_EXECUTION_ID=" + params["victim_id"]).encode()
    mine = {os.getpid(), os.getppid()}
    environ_read, signalled, killed = [], [], []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine:
            continue
        pid = int(name)
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            environ = b""
        if params["token"].encode() in environ:
            report["token_seen"] = True
        if needle in environ.split(b"\\0"):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid == os.getuid():
                continue  # the execution's own processes (its uid is its alone), e.g. an init
        except OSError:
            continue
        if environ:
            environ_read.append(pid)
        try:
            os.kill(pid, 0)
            signalled.append(pid)
        except OSError:
            pass
    report.update(environ_read=environ_read, signalled=signalled, killed=killed)
    return ResultResponse(result=report)
"""

FILLER = """
import os, subprocess
from .libs.return_objects import ResultResponse

def fill(path, megabytes):
    try:
        with open(path, "wb") as fh:
            for _ in range(megabytes):
                fh.write(os.urandom(1024 * 1024))
        return "filled"
    except OSError as exc:
        return "error: " + type(exc).__name__

def run(data=None, params=None):
    name = params["name"]
    report = {folder: fill(os.path.join(folder, name), 8) for folder in ("/tmp", "/var/tmp", "/dev/shm")}
    # A helper that leaves the process group and sheds the execution's environment (its marker).
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execve("/bin/sleep", ["sleep", params["sleep"]], {})
        os._exit(0)
    return ResultResponse(result=report)
"""


def _platform_files(data_dir: Path, secret: str) -> dict[Path, bytes]:
    """What an operator's data directory holds, with the rights a default umask gives."""
    files = {
        data_dir / "db.sqlite3": f"SQLite format 3\0 session {secret}".encode(),
        data_dir / "secret-key": f"django-secret {secret}".encode(),
        data_dir / "media" / "upload.zip": f"PK another user's code {secret}".encode(),
    }
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o644)
        path.parent.chmod(0o755)
    return files


def _build_paths(build: object) -> tuple[str, str]:
    # A container's environment and code are in its own image: no path leads to another's.
    return getattr(build, "env_dir", "/nonexistent/env"), getattr(build, "build_dir", "/nonexistent/code")


def _final(rt: RuntimeUnderTest, handle: object, output: str) -> FinalResponse | None:
    if hasattr(rt.runtime, "final_response"):
        return rt.runtime.final_response(handle)
    return final_response(output)


def test_a_hostile_execution_reads_and_signals_nothing_of_the_platform_or_another_execution(
    rt: RuntimeUnderTest,
) -> None:
    data_dir = Path(rt.config["data_dir"])
    secret = secrets.token_hex(16)
    token = f"ibm-token-{secrets.token_hex(16)}"
    files = _platform_files(data_dir, secret)

    # Other requirements than the attacker's: another environment, which it must not read.
    victim_build = rt.build(VICTIM, requirements="six\n")
    victim = rt.start(
        victim_build, data={"values": [100, 50, 200, 70, 0.69]}, params={"seconds": 6}, env={"QISKIT_IBM_TOKEN": token}
    )
    give_up = time.monotonic() + 120
    while "ready" not in rt.output(victim):
        assert rt.runtime.poll(victim).running, rt.output(victim)
        assert time.monotonic() < give_up
        time.sleep(0.1)

    victim_env, victim_code = _build_paths(victim_build)
    attacker_build = rt.build(ATTACKER)
    _state, output, final = rt.run(
        attacker_build,
        params={
            "victim_dir": victim.dir,  # type: ignore[attr-defined]
            # A warm execution's processes carry its runner's marker, not the execution's id.
            "victim_id": getattr(victim, "marker", "") or victim.execution_id,
            "victim_env": victim_env,
            "victim_code": victim_code,
            "data_dir": str(data_dir),
            "token": token,
        },
    )
    assert final is not None, output
    assert final.succeeded, output
    report = final.payload["result"]
    assert token not in output
    assert "token_seen" not in report, report
    assert secret not in output

    # The platform: nothing read, nothing listed, nothing written, nothing changed.
    for key in ("database", "secret_key", "media", "victim_input", "victim_launch", "victim_env", "victim_code"):
        assert report[key].startswith("error"), (key, report[key])
    for key in ("data_dir", "executions"):
        assert report[key].startswith("error"), (key, report[key])
    for key in ("write_victim_output", "write_victim_log", "write_data_dir", "write_database"):
        assert report[key].startswith("error"), (key, report[key])
    for path, content in files.items():
        assert path.read_bytes() == content
    assert not (data_dir / "planted.txt").exists()

    # The other execution: no process of it (or of anybody else) could be read or signalled.
    assert report["killed"] == [], report
    assert report["signalled"] == [], report
    assert report["environ_read"] == [], report

    # ... and it ends as it would have alone, with its own result.
    victim_state = rt.wait(victim)
    victim_output = rt.output(victim)
    assert victim_state.exit_code == 0, victim_output
    victim_final = _final(rt, victim, victim_output)
    assert victim_final is not None, victim_output
    assert victim_final.payload == {"result": {"sum": 420.69, "token_length": len(token)}, "metadata": None}
    assert "written by another execution" not in victim_output
    assert not (Path(victim.dir) / "output" / "planted.txt").exists()  # type: ignore[attr-defined]


def _sleepers(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry.name))
    return found


def test_what_an_execution_leaves_in_tmp_var_tmp_and_dev_shm_is_gone_after_its_cleanup(
    rt: RuntimeUnderTest,
) -> None:
    name = f"planqk-fill-{uuid.uuid4().hex[:12]}"
    sleep = f"{3000 + secrets.randbelow(1000)}.{secrets.randbelow(10**6)}"
    build = rt.build(FILLER)
    # RLIMIT_FSIZE is the output cap: large enough for the files it leaves.
    handle = rt.start(build, params={"name": name, "sleep": sleep}, memory_mb=256, max_output_bytes=64 << 20)
    state = rt.wait(handle)
    final = _final(rt, handle, rt.output(handle))
    assert final is not None, rt.output(handle)
    assert state.exit_code == 0, rt.output(handle)
    assert final.payload["result"]["/tmp"] == "filled"  # its own /tmp works
    rt.runtime.cleanup(handle)
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        assert not os.path.exists(os.path.join(folder, name)), f"{folder}/{name} survived the cleanup"
    # The helper that left the process group and cleared its environment went too.
    assert _sleepers(sleep) == []
    assert processes_of(handle.execution_id) == []


# --- no channel through the read-only files executions share ---------------------------------

SIGNALLER = """
import ctypes, fcntl, glob, os, select, sys, time
from .libs.return_objects import ResultResponse

libc = ctypes.CDLL(None, use_errno=True)
IN_OPEN = 0x20

def shared_files():
    # What every execution of this build sees: its code, its environment, the interpreter's
    # standard library, a file of the system (under /usr/lib/python3*), one of /etc, a device.
    files = {
        "code": os.path.join(os.path.dirname(os.path.abspath(__file__)), "program.py"),
        "env": os.path.join(sys.prefix, "pyvenv.cfg"),
        "stdlib": os.path.realpath(os.__file__),
        "dev": "/dev/null",
    }
    system = sorted(glob.glob("/usr/lib/python3*/os.py"))
    if system:
        files["system"] = system[0]
    if os.path.isfile("/etc/ld.so.cache"):
        files["etc"] = "/etc/ld.so.cache"
    # Without a sandbox the interpreter may be the system's: one file, locked once.
    unique = {}
    for name, path in files.items():
        unique.setdefault(os.path.realpath(path), name)
    return {name: path for path, name in unique.items()}

def wait_for(name):
    path = os.path.join(os.environ["INPUT_DIR"], name)
    give_up = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < give_up:
        time.sleep(0.02)

def run(data=None, params=None):
    files = shared_files()
    fds = {name: os.open(path, os.O_RDONLY) for name, path in files.items()}
    if params["role"] == "sender":
        # One bit per file, without a byte of writable state: a lock on a read-only file...
        for fd in fds.values():
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("locked", flush=True)
        wait_for("open.json")
        # ... and opens of it, which a watcher of the file is told of.
        for path in files.values():
            for _ in range(20):
                os.close(os.open(path, os.O_RDONLY))
        print("opened", flush=True)
        wait_for("done.json")
        return ResultResponse(result={"files": sorted(files)})
    watcher = libc.inotify_init1(os.O_NONBLOCK)
    watches = {libc.inotify_add_watch(watcher, path.encode(), IN_OPEN): name for name, path in files.items()}
    print("watching", flush=True)
    wait_for("look.json")
    locks = {}
    for name, fd in fds.items():
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locks[name] = "free"
        except OSError:
            locks[name] = "held"
    events = dict.fromkeys(files, 0)
    select.select([watcher], [], [], 1.0)
    try:
        raw = os.read(watcher, 65536)
    except OSError:
        raw = b""
    while len(raw) >= 16:
        # struct inotify_event: wd, mask, cookie, len, then len bytes of name.
        wd, length = int.from_bytes(raw[:4], "little", signed=True), int.from_bytes(raw[12:16], "little")
        if wd in watches:
            events[watches[wd]] += 1
        raw = raw[16 + length:]
    return ResultResponse(result={"locks": locks, "events": events, "watched": sorted(watches.values())})
"""


def _write_input(handle: object, name: str) -> None:
    path = Path(handle.dir) / "input" / name  # type: ignore[attr-defined]
    path.write_text("{}")
    path.chmod(0o644)


def _wait_output(rt: RuntimeUnderTest, handle: object, text: str, limit: float = 60.0) -> None:
    give_up = time.monotonic() + limit
    while text not in rt.output(handle):
        assert rt.runtime.poll(handle).running, rt.output(handle)
        assert time.monotonic() < give_up, rt.output(handle)
        time.sleep(0.05)


def test_two_concurrent_executions_of_one_build_cannot_signal_by_locks_or_opens_of_the_files_they_share(
    rt: RuntimeUnderTest,
) -> None:
    if rt.config["kind"] != "local":
        pytest.skip("the files every execution binds are the local runtime's")
    build = rt.build(SIGNALLER)
    receiver = rt.start(build, params={"role": "receiver"})
    _wait_output(rt, receiver, "watching")
    sender = rt.start(build, params={"role": "sender"})
    _wait_output(rt, sender, "locked")
    _write_input(sender, "open.json")
    _wait_output(rt, sender, "opened")
    _write_input(receiver, "look.json")
    state = rt.wait(receiver)
    final = _final(rt, receiver, rt.output(receiver))
    _write_input(sender, "done.json")
    sender_state = rt.wait(sender)
    assert final is not None, rt.output(receiver)
    assert state.exit_code == 0, rt.output(receiver)
    assert sender_state.exit_code == 0, rt.output(sender)
    result = final.payload["result"]
    names = set(result["watched"])
    assert {"code", "env", "stdlib", "dev"} <= names, result
    if os.path.isfile("/etc/ld.so.cache"):
        assert "etc" in names, result
    if glob.glob("/usr/lib/python3*/os.py") and rt.config.get("sandbox") != "none":
        assert "system" in names, result  # a file of the system besides the interpreter's
    if rt.config.get("sandbox") == "none":
        # Without bubblewrap there is no mount namespace of the execution's own: the channel is
        # there, one of the gaps PLANQK_SANDBOX=none documents (isolation_gaps). Asserted, so
        # this test shows it can see the channel where it exists.
        assert "the same files" in isolation_gaps("none", os.geteuid() == 0)
        assert set(result["locks"].values()) == {"held"}, result
        assert all(count > 0 for count in result["events"].values()), result
        return
    # Nothing the other did may be seen: every lock is free for it, no open was reported to it.
    assert result["locks"] == dict.fromkeys(names, "free"), result
    assert result["events"] == dict.fromkeys(names, 0), result


CAPABILITIES = """
import os
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    with open("/proc/self/status") as fh:
        fields = dict(line.split(":", 1) for line in fh if ":" in line)
    caps = {name: int(fields[name].strip(), 16) for name in fields if name.startswith("Cap")}
    try:
        os.setuid(0)
        setuid = "became root"
    except OSError as exc:
        setuid = "error: " + type(exc).__name__
    return ResultResponse(result={"caps": caps, "setuid": setuid, "no_new_privs": fields["NoNewPrivs"].strip()})
"""


def test_user_code_holds_no_capability(rt: RuntimeUnderTest) -> None:
    if rt.config["kind"] == "local" and os.geteuid() != 0:
        pytest.skip("an unprivileged worker's user code runs in bubblewrap's user namespace, as the worker")
    build = rt.build(CAPABILITIES)
    state, output, final = rt.run(build)
    assert state.exit_code == 0, output
    assert final is not None, output
    result = final.payload["result"]
    # Not one in any set: effective, permitted, inheritable, ambient and bounding (in bubblewrap
    # the setup that mounts the overlays and switches the uid had CAP_SYS_ADMIN, CAP_SETPCAP,
    # CAP_SETUID and CAP_SETGID; without it the supervisor drops them before the uid switch).
    caps = result["caps"]
    names = ("CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd")
    assert {name: caps[name] for name in names} == dict.fromkeys(names, 0), result
    assert result["no_new_privs"] == "1", result
    assert result["setuid"] == "error: PermissionError", result


# --- the uids of executions ------------------------------------------------------------------


def test_concurrent_claims_never_share_a_uid_and_a_full_range_refuses(tmp_path: Path) -> None:
    running = uids_running()
    first = next(uid for uid in range(300_000, 400_000) if not running & set(range(uid, uid + 8)))
    uids = ExecutionUids(first, first + 7, tmp_path / "claims")
    got: list[int] = []
    lock = threading.Lock()

    def claim(n: int) -> None:
        uid = uids.claim(f"e{n}", tmp_path / f"e{n}")
        with lock:
            got.append(uid)

    for n in range(8):
        (tmp_path / f"e{n}").mkdir()
    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == list(range(first, first + 8))
    with pytest.raises(RuntimeUnavailable, match="in use"):
        uids.claim("e8", tmp_path / "e8")
    released = uids.release("e3")
    assert released in got
    # A claim whose execution folder is gone (its worker died) is stale and taken over.
    (tmp_path / "e5").rmdir()
    again = {uids.claim("e9", tmp_path / "e9"), uids.claim("e10", tmp_path / "e10")}
    assert len(again) == 2
    assert released in again


def test_running_executions_have_uids_of_their_own_given_back_at_cleanup(rt: RuntimeUnderTest) -> None:
    if rt.config["kind"] == "docker" or os.geteuid() != 0:
        pytest.skip("the local runtime switches uids when the worker is root")
    from .test_contract import SLEEPER

    build = rt.build(SLEEPER)
    handles = [rt.start(build, params={"seconds": 30}) for _ in range(3)]
    uids = [h.uid for h in handles]  # type: ignore[attr-defined]
    assert None not in uids
    assert len(set(uids)) == 3
    for handle in handles:
        rt.runtime.cancel(handle)
        rt.runtime.cleanup(handle)
    claims = rt.runtime.sandbox.uids().claims_dir  # type: ignore[attr-defined]
    assert not any((claims / str(uid)).exists() for uid in uids)


def test_without_bubblewrap_the_default_sandbox_refuses_to_run_rather_than_run_unsandboxed(tmp_path: Path) -> None:
    runtime = LocalRuntime(LocalConfig(data_dir=tmp_path, bwrap="planqk-no-such-bwrap"))
    with pytest.raises(RuntimeUnavailable, match=r"bubblewrap not installed.*PLANQK_SANDBOX=none"):
        runtime.sandbox_mode()
    with pytest.raises(RuntimeUnavailable, match="must be bwrap or none"):
        LocalRuntime(LocalConfig(data_dir=tmp_path, sandbox="auto")).sandbox_mode()


# --- without bubblewrap, an interpreter other users cannot read ------------------------------

PROBE = """
import os
from .libs.return_objects import ResultResponse

def attempt(action, path):
    try:
        return "ok: " + str(action(path))[:200]
    except OSError as exc:
        return "error: " + type(exc).__name__

def run(data=None, params=None):
    read = lambda path: open(path, "rb").read(200)
    home, data_dir = params["home"], params["data_dir"]
    return ResultResponse(result={
        "sum": sum(data["values"]),
        "groups": sorted(os.getgroups()),
        "database": attempt(read, os.path.join(data_dir, "db.sqlite3")),
        "secret_key": attempt(read, os.path.join(data_dir, "secret-key")),
        "data_dir": attempt(os.listdir, data_dir),
        "home": attempt(os.listdir, home),
        "home_secret": attempt(read, os.path.join(home, ".bash_history")),
        "include": attempt(os.listdir, os.path.join(params["prefix"], "include")),
    })
"""


@pytest.fixture(scope="module")
def python_in_a_closed_home() -> Iterator[tuple[Path, Path]]:
    """A copy of the system's Python in a home-like folder: the home and everything in it 0700/0600.

    As root's home with pyenv: other users can neither pass the home nor read the interpreter.
    Yields the home and the interpreter.
    """
    if os.geteuid() != 0:
        pytest.skip("only a root worker runs executions as other uids")
    system = os.path.realpath(SYSTEM_PYTHON)
    if not os.path.exists(system):
        pytest.skip(f"no {SYSTEM_PYTHON} to copy")
    info = subprocess.run(
        [system, "-I", "-c", "import sys, sysconfig; print(sysconfig.get_path('stdlib')); print(sys.version_info[1])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    stdlib, minor = Path(info[0]), info[1]
    top = Path(tempfile.mkdtemp(prefix="planqk-closed-home-"))
    home = top / "home"
    prefix = home / ".pyenv" / "versions" / f"3.{minor}"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "include").mkdir()
    shutil.copy2(system, prefix / "bin" / f"python3.{minor}")
    skip = shutil.ignore_patterns("test", "__pycache__", "site-packages", "dist-packages", "idlelib", "tkinter")
    shutil.copytree(stdlib, prefix / "lib" / f"python3.{minor}", ignore=skip, symlinks=True)
    (prefix / "lib" / f"python3.{minor}" / "site-packages").mkdir()
    (home / ".bash_history").write_text("export QISKIT_IBM_TOKEN=the-operators-own\n")
    for path in [top, *top.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o700 if path.is_dir() or path.stat().st_mode & 0o100 else 0o600)
    python = prefix / "bin" / f"python3.{minor}"
    if subprocess.run([str(python), "-I", "-c", "import json, venv"], capture_output=True).returncode != 0:
        shutil.rmtree(top)
        pytest.skip(f"a copy of {system} does not run from another folder")
    yield home, python
    shutil.rmtree(top, ignore_errors=True)


def test_without_bubblewrap_a_root_worker_runs_an_interpreter_from_a_closed_home_and_opens_nothing_else(
    python_in_a_closed_home: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    home, python = python_in_a_closed_home
    prefix = python.parents[1]
    data_dir = Path(tempfile.mkdtemp(prefix="planqk-rt-closed-home-"))
    data_dir.chmod(0o755)
    source_root = Path(tempfile.mkdtemp(prefix="planqk-rt-closed-home-src-"))
    secret = secrets.token_hex(16)
    files = _platform_files(data_dir, secret)
    config = LocalConfig(data_dir=data_dir, sandbox="none", python=str(python))
    rt = RuntimeUnderTest("local-closed-home", LocalRuntime(config), {"kind": "local"}, source_root)
    assert not accessible_to(str(python), 65534, 65534)
    try:
        with caplog.at_level("WARNING", logger="runtimes.local.sandbox"):
            build = rt.build(PROBE)
            state, output, final = rt.run(
                build,
                data={"values": [100, 50, 200, 70, 0.69]},
                params={"home": str(home), "data_dir": str(data_dir), "prefix": str(prefix)},
            )
        assert state.exit_code == 0, output
        assert final is not None, output
        assert final.succeeded, output
        report = final.payload["result"]
        assert report["sum"] == 420.69
        # The interpreter runs through the executions' group, its only supplementary one.
        assert report["groups"] == [config.execution_group], report
        assert f"granted group {config.execution_group}" in caplog.text
        # Nothing else: not the platform's data, not the rest of the home, not the prefix's other folders.
        for key in ("database", "secret_key", "data_dir", "home", "home_secret", "include"):
            assert report[key].startswith("error"), (key, report[key])
        assert secret not in output
        for path, content in files.items():
            assert path.read_bytes() == content
        # The group has an entry on the home (pass only) and none anywhere in the data directory.
        home_acl = [e for e in _acl_entries(str(home)) if e[2] == config.execution_group]
        assert [perm for _tag, perm, _gid in home_acl] == [1]
        for path in [data_dir, *data_dir.rglob("*")]:
            assert all(e[2] != config.execution_group for e in _acl_entries(str(path))), path
    finally:
        for handle in rt.started:
            rt.runtime.cleanup(handle)
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(source_root, ignore_errors=True)
