"""A local build made in one data directory runs from another (issue 22 item 1): the second
"host" materialises the environment from the build's lock and the code from the version's
archive, into folders it derives itself, and refuses edited locks and paths cleanly."""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimes import BuildSpec, ExecutionSpec, RuntimeUnavailable
from runtimes.local import LocalBuildHandle, LocalConfig, LocalRuntime
from runtimes.local.locks import LOCK_HEADER, LockError, parse_lock

from .conftest import _private_dir, local_wheel
from .test_builds_sandbox import bwrap_works
from .test_local import RuntimeUnderTest  # noqa: F401 - the type of the helpers below

PROGRAM = """
import importlib


def run(data=None, params=None):
    from src.libs.return_objects import ResultResponse

    module = importlib.import_module(params["module"])
    return ResultResponse(result={"value": module.VALUE})
"""


@dataclasses.dataclass
class Host:
    runtime: LocalRuntime
    data_dir: Path


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host, Path]]:
    """Two data directories ("host A", "host B") and a file index serving what A's wheelhouse has."""
    made = [_private_dir("mat-a"), _private_dir("mat-b"), _private_dir("mat-src")]
    a, b, src = made
    index = src / "index"
    yield (
        Host(LocalRuntime(LocalConfig(data_dir=a)), a),
        Host(LocalRuntime(LocalConfig(data_dir=b, pip_index_url=index.as_uri())), b),
        src,
    )
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def serve_index(wheelhouse: Path, index: Path) -> None:
    """A PEP 503 folder index of the wheels in ``wheelhouse`` (what an operator's mirror serves)."""
    from packaging.utils import canonicalize_name, parse_wheel_filename

    for wheel in wheelhouse.glob("*.whl"):
        name = canonicalize_name(parse_wheel_filename(wheel.name)[0])
        folder = index / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(wheel, folder / wheel.name)
        (folder / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')


def build_on_a(a: Host, src: Path, module: str) -> tuple[LocalBuildHandle, Path]:
    """Build a version needing a fresh local wheel on host A; returns its handle and its code folder."""
    requirements = local_wheel(a.data_dir / "wheelhouse", module.replace("_", "-"), "1.0")
    code = src / f"code-{module}"
    from planqk_samples import sample_files
    from planqk_template import write_files

    files = dict(sample_files("sum"))
    files["src/program.py"] = PROGRAM.encode()
    files["requirements.txt"] = requirements.encode()
    write_files(code, files)
    spec = BuildSpec(version_id=f"mat-{uuid.uuid4().hex[:10]}", source_dir=code, requirements=requirements)
    handle = a.runtime.build(spec, log=lambda line: None).build
    assert isinstance(handle, LocalBuildHandle)
    return handle, code


def run(host: Host, build: LocalBuildHandle, module: str, code: Path | None, lines: list[str]):
    def unpack(dest: Path) -> None:
        assert code is not None
        shutil.copytree(code, dest, dirs_exist_ok=True)

    spec = ExecutionSpec(
        execution_id=f"t{uuid.uuid4().hex[:12]}",
        build=build,
        params={"module": module},
        memory_mb=256,
        timeout_seconds=60,
        log=lines.append,
        unpack_code=unpack if code is not None else None,
    )
    handle = host.runtime.start(spec)
    import time

    while host.runtime.poll(handle).running:
        time.sleep(0.1)
    final = host.runtime.final_response(handle)
    host.runtime.cleanup(handle)
    return final


def test_a_build_of_host_a_runs_on_host_b_from_its_lock(hosts) -> None:
    a, b, src = hosts
    module = f"movable_{uuid.uuid4().hex[:8]}"
    build, code = build_on_a(a, src, module)
    assert build.lock.startswith(LOCK_HEADER)
    assert f"{module.replace('_', '-')}==1.0 --hash=sha256:" in build.lock
    assert build.code_digest
    serve_index(a.data_dir / "wheelhouse", src / "index")

    lines: list[str] = []
    final = run(b, build, module, code, lines)
    assert final is not None
    assert final.payload == {"result": {"value": "1.0"}, "metadata": None}, final
    assert len(lines) == 1, lines
    assert "environment and code materialised from the build's lock and the version's archive in" in lines[0]
    env_dir = b.data_dir / "envs" / build.env_key
    assert (env_dir / ".planqk-ready").exists()
    assert (b.data_dir / "builds" / build.version_id / "src" / "program.py").exists()
    # Its wheel came from the index into B's own wheelhouse; the next start reuses everything.
    assert list((b.data_dir / "wheelhouse").glob(f"{module}-1.0-*.whl"))
    again: list[str] = []
    final = run(b, build, module, None, again)
    assert final is not None
    assert final.payload["result"] == {"value": "1.0"}
    assert again == []


def test_host_b_materialises_offline_from_its_own_cache(hosts) -> None:
    a, b, src = hosts
    module = f"offline_{uuid.uuid4().hex[:8]}"
    build, code = build_on_a(a, src, module)
    # No index (the fixture's is empty): B's wheelhouse has the wheel already.
    (b.data_dir / "wheelhouse").mkdir(parents=True)
    for wheel in (a.data_dir / "wheelhouse").glob(f"{module}-*.whl"):
        shutil.copy(wheel, b.data_dir / "wheelhouse" / wheel.name)
    lines: list[str] = []
    final = run(b, build, module, code, lines)
    assert final is not None, lines
    assert final.payload["result"] == {"value": "1.0"}, (final, lines)
    assert "materialised" in lines[0]


def test_a_wheel_that_does_not_match_the_lock_fails_cleanly(hosts) -> None:
    a, b, src = hosts
    module = f"mismatch_{uuid.uuid4().hex[:8]}"
    build, code = build_on_a(a, src, module)
    # Host B's cache and the index serve a wheel of that name and version with other contents.
    other = src / "other"
    local_wheel(other, module.replace("_", "-"), "1.0")
    wheel = next(other.glob("*.whl"))
    with open(wheel, "ab") as fh:
        fh.write(b"\0")  # still a zip, another hash
    serve_index(other, src / "index")
    (b.data_dir / "wheelhouse").mkdir(parents=True)
    shutil.copy(wheel, b.data_dir / "wheelhouse" / wheel.name)
    with pytest.raises(RuntimeUnavailable) as caught:
        run(b, build, module, code, [])
    assert caught.value.code == "platform:build-unavailable"
    assert "could not be materialised" in str(caught.value)
    assert not (b.data_dir / "envs" / build.env_key).exists()  # nothing half-made is left to reuse


@pytest.mark.parametrize(
    "edit",
    [
        {"env_key": "../../etc"},
        {"env_key": "a" * 63 + "/"},
        {"version_id": "../builds"},
        {"env_dir": "/", "build_dir": "/etc"},
    ],
)
def test_paths_in_a_stored_handle_are_never_used(hosts, edit) -> None:
    a, b, src = hosts
    module = f"paths_{uuid.uuid4().hex[:8]}"
    build, code = build_on_a(a, src, module)
    serve_index(a.data_dir / "wheelhouse", src / "index")
    edited = dataclasses.replace(build, **edit)
    if "env_key" in edit or "version_id" in edit:
        with pytest.raises(RuntimeUnavailable) as caught:
            run(b, edited, module, code, [])
        assert caught.value.code == "platform:build-unavailable"
        return
    # The handle's paths are ignored: B runs from its own folders.
    lines: list[str] = []
    final = run(b, edited, module, code, lines)
    assert final is not None
    assert final.payload["result"] == {"value": "1.0"}
    assert (b.data_dir / "envs" / build.env_key).is_dir()


@pytest.mark.parametrize(
    "line",
    [
        "evil @ file:///etc/passwd",
        "--find-links /",
        "--index-url http://127.0.0.1:9/simple",
        "-e .",
        "pkg>=1.0 --hash=sha256:" + "0" * 64,
        "pkg==1.0",
        "pkg==1.0 --hash=md5:abc",
        "pkg==1.0 --hash=sha256:" + "0" * 64 + " --no-deps",
    ],
)
def test_an_edited_lock_is_refused(hosts, line) -> None:
    with pytest.raises(LockError):
        parse_lock(LOCK_HEADER + line + "\n")
    a, b, src = hosts
    module = f"edited_{uuid.uuid4().hex[:8]}"
    build, code = build_on_a(a, src, module)
    with pytest.raises(RuntimeUnavailable) as caught:
        run(b, dataclasses.replace(build, lock=build.lock + line + "\n"), module, code, [])
    assert caught.value.code == "platform:build-unavailable"
    assert "lock is refused" in str(caught.value)


def test_a_lock_without_the_platforms_header_is_refused() -> None:
    with pytest.raises(LockError):
        parse_lock("pkg==1.0 --hash=sha256:" + "0" * 64 + "\n")


def test_code_that_is_not_the_builds_is_refused(hosts) -> None:
    a, b, src = hosts
    module = f"code_{uuid.uuid4().hex[:8]}"
    build, code = build_on_a(a, src, module)
    serve_index(a.data_dir / "wheelhouse", src / "index")
    (code / "src" / "program.py").write_text(PROGRAM + "\n# changed after the build\n")
    with pytest.raises(RuntimeUnavailable) as caught:
        run(b, build, module, code, [])
    assert caught.value.code == "platform:build-unavailable"
    assert "digest differs" in str(caught.value)
    assert not (b.data_dir / "builds" / build.version_id).exists()


def test_two_starts_at_once_on_host_b_materialise_once(hosts) -> None:
    import threading

    a, b, src = hosts
    module = f"twice_{uuid.uuid4().hex[:8]}"
    build, code = build_on_a(a, src, module)
    serve_index(a.data_dir / "wheelhouse", src / "index")
    lines: dict[int, list[str]] = {0: [], 1: []}
    finals: dict[int, object] = {}
    errors: list[BaseException] = []

    def start(n: int) -> None:
        try:
            finals[n] = run(b, build, module, code, lines[n])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in lines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(final is not None and final.payload["result"] == {"value": "1.0"} for final in finals.values())
    said = sorted(line for n in lines for line in lines[n])
    made = [line for line in said if "materialised from" in line]
    assert len(made) == 1, lines
    # The other one waited for it (or came after it) and reused what it made.
    assert len(said) <= 2, lines
    assert all("materialised" in line or "waited" in line for line in said), lines
    assert len(list((b.data_dir / "envs").glob("*/.planqk-ready"))) == 1


def test_a_start_told_to_stop_stops_materialising(hosts) -> None:
    a, b, src = hosts
    module = f"stopped_{uuid.uuid4().hex[:8]}"
    build, _code = build_on_a(a, src, module)
    serve_index(a.data_dir / "wheelhouse", src / "index")
    spec = ExecutionSpec(execution_id=f"t{uuid.uuid4().hex[:12]}", build=build, should_stop=lambda: True)
    with pytest.raises(RuntimeUnavailable) as caught:
        b.runtime.start(spec)
    assert caught.value.code == "platform:build-unavailable"
    assert not (b.data_dir / "envs" / build.env_key).exists()


@pytest.mark.skipif(not bwrap_works(), reason="building from source needs bubblewrap")
def test_a_package_built_from_source_on_host_a_is_named_and_host_b_fails_cleanly(tmp_path) -> None:
    """A wheel built from a source archive exists only in host A's cache: no index has its hash."""
    from .test_build_caches import source_index, user_code

    index = source_index(tmp_path / "index", "srcpkg", "1.0", {"srcpkg/__init__.py": "VALUE = '1.0'\n"})
    host_a = LocalRuntime(LocalConfig(data_dir=tmp_path / "a", sandbox="bwrap", pip_index_url=index))
    host_b = LocalRuntime(LocalConfig(data_dir=tmp_path / "b", sandbox="bwrap", pip_index_url=index))
    lines: list[str] = []
    spec = BuildSpec(version_id="src-a", source_dir=user_code(tmp_path / "code"), requirements="srcpkg==1.0\n")
    handle = host_a.build(spec, log=lines.append).build
    assert isinstance(handle, LocalBuildHandle)
    assert "built from source here: srcpkg; other hosts cannot make this environment from its lock" in "\n".join(lines)
    assert "srcpkg==1.0 --hash=sha256:" in handle.lock
    with pytest.raises(RuntimeUnavailable) as caught:
        host_b.start(ExecutionSpec(execution_id=f"t{uuid.uuid4().hex[:12]}", build=handle))
    assert caught.value.code == "platform:build-unavailable"
    assert "could not be materialised" in str(caught.value)


def test_a_host_installing_with_pip_materialises_a_uv_lock(hosts) -> None:
    """PLANQK_INSTALLER=pip on host B: pip installs the lock with --require-hashes, in the sandbox."""
    a, _b, src = hosts
    module = f"bypip_{uuid.uuid4().hex[:8]}"
    build, code = build_on_a(a, src, module)
    serve_index(a.data_dir / "wheelhouse", src / "index")
    b_dir = _private_dir("mat-pip")
    try:
        b = Host(
            LocalRuntime(LocalConfig(data_dir=b_dir, installer="pip", pip_index_url=(src / "index").as_uri())), b_dir
        )
        lines: list[str] = []
        final = run(b, build, module, code, lines)
        assert final is not None, lines
        assert final.payload["result"] == {"value": "1.0"}
        assert "materialised" in lines[0]
    finally:
        shutil.rmtree(b_dir, ignore_errors=True)


def test_host_b_keeps_its_own_environment_of_the_same_requirements_apart(hosts) -> None:
    """Equal requirements resolved differently (host A found 1.0, host B 2.0): A's build runs on B
    with exactly A's lock, in a folder of its own, and B's environment stays as it was."""
    a, b, src = hosts
    module = f"apart_{uuid.uuid4().hex[:8]}"
    name = module.replace("_", "-")
    local_wheel(a.data_dir / "wheelhouse", name, "1.0")
    local_wheel(b.data_dir / "wheelhouse", name, "2.0")
    requirements = f"{name}>=1\n"
    from planqk_samples import sample_files
    from planqk_template import write_files

    files = dict(sample_files("sum"))
    files["src/program.py"] = PROGRAM.encode()
    files["requirements.txt"] = requirements.encode()
    write_files(src / "code", files)
    build_a = a.runtime.build(BuildSpec("apart-a", src / "code", requirements), log=lambda _l: None).build
    build_b = b.runtime.build(BuildSpec("apart-b", src / "code", requirements), log=lambda _l: None).build
    assert isinstance(build_a, LocalBuildHandle)
    assert isinstance(build_b, LocalBuildHandle)
    assert build_a.env_key == build_b.env_key
    assert build_a.lock != build_b.lock
    serve_index(a.data_dir / "wheelhouse", src / "index")

    final = run(b, build_a, module, src / "code", [])
    assert final is not None
    assert final.payload["result"] == {"value": "1.0"}  # A's lock, not B's environment
    final = run(b, build_b, module, None, [])
    assert final is not None
    assert final.payload["result"] == {"value": "2.0"}
    assert len(list((b.data_dir / "envs").glob("*/.planqk-ready"))) == 2


def test_an_unreachable_index_fails_cleanly(hosts) -> None:
    a, b, src = hosts
    module = f"noindex_{uuid.uuid4().hex[:8]}"
    build, code = build_on_a(a, src, module)  # host B's index (a file: URL) serves nothing
    with pytest.raises(RuntimeUnavailable) as caught:
        run(b, build, module, code, [])
    assert caught.value.code == "platform:build-unavailable"
    assert "fetching the locked files failed" in str(caught.value)
    assert not (b.data_dir / "envs" / build.env_key).exists()


def test_an_environment_built_before_locks_is_locked_when_a_build_reuses_it(hosts) -> None:
    a, _b, src = hosts
    module = f"older_{uuid.uuid4().hex[:8]}"
    first, code = build_on_a(a, src, module)
    env_dir = a.data_dir / "envs" / first.env_key
    (env_dir / ".planqk-lock").unlink()  # as an environment of an earlier release has none
    requirements = (code / "requirements.txt").read_text()
    again = a.runtime.build(BuildSpec("older-again", code, requirements), log=lambda _l: None).build
    assert isinstance(again, LocalBuildHandle)
    assert again.reused
    assert again.lock == first.lock
    assert (env_dir / ".planqk-lock").read_text() == first.lock
