"""The platform's build caches (issue 16): uv's unpacked wheels and wheels built from source.

A new environment links the files of the platform's uv cache (unpacked and compiled once);
nothing a build runs can change those files, here tried by a package built from source that
ships a file of another package and whose build backend aims at the cache. A wheel built from
a source archive is stored under the archive's sha256 and the build environment: the next build
of the same archive takes it without running the backend, a different archive of the same name
and version is built again, and a backend that leaves a link or another project's wheel stores
nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from runtimes import BuildError, BuildSpec
from runtimes.local import LocalConfig, LocalRuntime

from .test_builds_sandbox import _add, bwrap_works, user_code

pytestmark = pytest.mark.slow

needs_bwrap = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap does not work here")

# A PEP 517 backend building a wheel from FILES (a dict of path to text), after trying what ATTACK says.
BACKEND = """
import base64, hashlib, os, zipfile

NAME, VERSION = {name!r}, {version!r}
FILES = {files!r}
TARGETS = {targets!r}
EXTRA = {extra!r}


def _attack():
    print("BACKEND RAN", flush=True)
    for target in TARGETS:
        try:
            with open(target, "w") as fh:
                fh.write("VALUE = 'planted'\\n")
            print(f"ATTACK: wrote {{target}}", flush=True)
        except OSError as exc:
            print(f"ATTACK: write failed: {{exc}}", flush=True)


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _attack()
    dist = f"{{NAME}}-{{VERSION}}.dist-info"
    files = {{path: text.encode() for path, text in FILES.items()}}
    files[f"{{dist}}/METADATA"] = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n".encode()
    files[f"{{dist}}/WHEEL"] = b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append(f"{{dist}}/RECORD,,")
    files[f"{{dist}}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = EXTRA.get("wheel_name") or f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    if EXTRA.get("link"):
        os.symlink(EXTRA["link"], os.path.join(wheel_directory, "zzz-1.0-py3-none-any.whl"))
    return name
"""


def wheel_bytes(name: str, version: str, files: dict[str, bytes]) -> bytes:
    """A minimal wheel of ``name`` holding ``files``."""
    dist = f"{name}-{version}.dist-info"
    files = {
        **files,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
        for n, d in files.items()
    ]
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return buffer.getvalue()


def source_index(
    root: Path,
    name: str,
    version: str,
    files: dict[str, str],
    *,
    targets: list[str] = (),  # type: ignore[assignment]
    extra: dict[str, str] | None = None,
) -> str:
    """A PEP 503 index folder serving ``name`` only as a source archive; returns its file: URL.

    Called again with other ``files``, it replaces the archive (same name and version, other bytes).
    """
    folder = root / "files"
    folder.mkdir(parents=True, exist_ok=True)
    sdist = folder / f"{name}-{version}.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        pyproject = b'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        _add(tar, f"{name}-{version}/pyproject.toml", pyproject)
        backend = BACKEND.format(name=name, version=version, files=files, targets=list(targets), extra=extra or {})
        _add(tar, f"{name}-{version}/backend.py", backend.encode())
        _add(tar, f"{name}-{version}/PKG-INFO", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode())
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    project = root / "simple" / name
    project.mkdir(parents=True, exist_ok=True)
    link = f"file://{sdist}#sha256={digest}"
    (project / "index.html").write_text(f'<html><body><a href="{link}">{sdist.name}</a></body></html>\n')
    (root / "simple" / "index.html").write_text(f'<html><body><a href="{name}/">{name}</a></body></html>\n')
    return f"file://{root / 'simple'}/"


def build(runtime: LocalRuntime, tmp_path: Path, version_id: str, requirements: str) -> tuple[Path, str]:
    lines: list[str] = []
    try:
        result = runtime.build(
            BuildSpec(version_id=version_id, source_dir=user_code(tmp_path / version_id), requirements=requirements),
            log=lines.append,
        )
    except BuildError as exc:
        exc.log = "\n".join(lines)  # type: ignore[attr-defined]
        raise
    return Path(result.build.env_dir), "\n".join(lines)  # type: ignore[attr-defined]


def site_file(env: Path, relative: str) -> Path:
    found = list(env.glob(f"lib/python*/site-packages/{relative}"))
    assert len(found) == 1, (env, relative)
    return found[0]


def cache_copies(data_dir: Path, relative: str) -> list[Path]:
    return list((data_dir / "uv-cache").glob(f"archive-v*/*/{relative}"))


@pytest.mark.skipif(os.geteuid() != 0 and not bwrap_works(), reason="needs bubblewrap or root")
def test_a_new_environment_links_the_compiled_platform_cache(tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "wheelhouse").mkdir(parents=True)
    wheel = wheel_bytes("cachedpkg", "2.0", {"cachedpkg/__init__.py": b"VALUE = 'good'\n"})
    (data_dir / "wheelhouse" / "cachedpkg-2.0-py3-none-any.whl").write_bytes(wheel)
    sandbox = "bwrap" if bwrap_works() else "none"
    runtime = LocalRuntime(LocalConfig(data_dir=data_dir, sandbox=sandbox, pip_index_url=f"file://{tmp_path}/none/"))
    env_a, log = build(runtime, tmp_path, "a", "cachedpkg==2.0\n")
    env_b, _ = build(runtime, tmp_path, "b", "cachedpkg>=2\n")
    assert env_a != env_b
    assert "every package was in the cache" in log
    (cached,) = cache_copies(data_dir, "cachedpkg/__init__.py")
    for env in (env_a, env_b):
        installed = site_file(env, "cachedpkg/__init__.py")
        assert os.stat(installed).st_ino == os.stat(cached).st_ino  # a link, not a copy
        # The bytecode the platform compiled once (checked-hash: flags 3 in the header) came along.
        (pyc,) = installed.parent.glob("__pycache__/__init__.cpython-*.pyc")
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 3


@needs_bwrap
def test_nothing_a_build_runs_changes_the_cache_or_another_environment(tmp_path):
    """Provider B's requirements build a package whose wheel ships cachedpkg's file and whose backend
    writes at the cache and at A's environment; A's environment and the cache stay as they were."""
    data_dir = tmp_path / "data"
    (data_dir / "wheelhouse").mkdir(parents=True)
    wheel = wheel_bytes("cachedpkg", "2.0", {"cachedpkg/__init__.py": b"VALUE = 'good'\n"})
    (data_dir / "wheelhouse" / "cachedpkg-2.0-py3-none-any.whl").write_bytes(wheel)
    index_root = tmp_path / "index"
    index = source_index(index_root, "evilpkg", "1.0", {"evilpkg/__init__.py": ""})
    runtime = LocalRuntime(LocalConfig(data_dir=data_dir, sandbox="bwrap", pip_index_url=index))
    env_a, _ = build(runtime, tmp_path, "a", "cachedpkg==2.0\n")
    victim = site_file(env_a, "cachedpkg/__init__.py")
    (cached,) = cache_copies(data_dir, "cachedpkg/__init__.py")
    source_index(
        index_root,
        "evilpkg",
        "1.0",
        {"evilpkg/__init__.py": "", "cachedpkg/__init__.py": "VALUE = 'evil'\n"},
        targets=[str(cached), str(victim)],
    )
    env_b, log = build(runtime, tmp_path, "b", "cachedpkg==2.0\nevilpkg==1.0\n")
    assert "BACKEND RAN" in log
    assert "ATTACK: wrote" not in log
    assert log.count("ATTACK: write failed") == 2
    # B gets what its own requirements installed last; nobody else does.
    assert site_file(env_b, "cachedpkg/__init__.py").read_text() == "VALUE = 'evil'\n"
    assert victim.read_text() == "VALUE = 'good'\n"
    assert cached.read_text() == "VALUE = 'good'\n"
    assert os.stat(victim).st_ino == os.stat(cached).st_ino
    # A third environment from the cache is still the good one.
    env_c, _ = build(runtime, tmp_path, "c", "cachedpkg>=2.0\n")
    assert site_file(env_c, "cachedpkg/__init__.py").read_text() == "VALUE = 'good'\n"


@needs_bwrap
def test_a_wheel_built_from_source_is_reused_for_the_same_archive_only(tmp_path):
    data_dir = tmp_path / "data"
    index_root = tmp_path / "index"
    built_cache = data_dir / "built-wheels"
    index = source_index(
        index_root, "srconly", "1.0", {"srconly/__init__.py": "VALUE = 1\n"}, targets=[str(built_cache / "x")]
    )
    runtime = LocalRuntime(LocalConfig(data_dir=data_dir, sandbox="bwrap", pip_index_url=index))
    env, log = build(runtime, tmp_path, "first", "srconly==1.0\n")
    assert "BACKEND RAN" in log
    assert "ATTACK: write failed" in log  # the platform's cache of built wheels is not in the sandbox
    assert "is now in the platform's cache" in log
    assert site_file(env, "srconly/__init__.py").read_text() == "VALUE = 1\n"
    (stored,) = built_cache.glob("*/srconly-1.0-py3-none-any.whl")
    stored_bytes = stored.read_bytes()

    # Other requirements (a new environment), the same archive: the backend does not run again.
    env, log = build(runtime, tmp_path, "second", "srconly>=1.0\n")
    assert "BACKEND RAN" not in log
    assert "built earlier from this very archive is in the platform's cache" in log
    assert site_file(env, "srconly/__init__.py").read_text() == "VALUE = 1\n"

    # The index now serves another archive under the same name and version: it is built, not taken.
    source_index(index_root, "srconly", "1.0", {"srconly/__init__.py": "VALUE = 2\n"})
    env, log = build(runtime, tmp_path, "third", "srconly>=0.1\n")
    assert "BACKEND RAN" in log
    assert site_file(env, "srconly/__init__.py").read_text() == "VALUE = 2\n"
    assert len(list(built_cache.glob("*/*.whl"))) == 2
    assert stored.read_bytes() == stored_bytes


@needs_bwrap
@pytest.mark.parametrize(
    ("installer", "extra", "messages"),
    [
        # uv builds into the output folder itself (pip copies only the wheel the backend names).
        ("uv", {"link": "/etc/passwd"}, ["not a plain wheel file"]),
        # Both installers refuse it themselves (fetch.check_built_wheel is the platform's own check after them).
        ("uv", {"wheel_name": "numpy-9.9-py3-none-any.whl"}, ["but the wheel declares name numpy"]),
        ("pip", {"wheel_name": "numpy-9.9-py3-none-any.whl"}, ["building sneaky-1.0.tar.gz from source failed"]),
    ],
    ids=["uv-a-link-beside-the-wheel", "uv-another-projects-wheel", "pip-another-projects-wheel"],
)
def test_a_backend_that_leaves_a_link_or_another_projects_wheel_stores_nothing(tmp_path, extra, messages, installer):
    data_dir = tmp_path / "data"
    index = source_index(tmp_path / "index", "sneaky", "1.0", {"sneaky/__init__.py": ""}, extra=extra)
    config = LocalConfig(data_dir=data_dir, sandbox="bwrap", pip_index_url=index, installer=installer)
    with pytest.raises(BuildError) as caught:
        build(LocalRuntime(config), tmp_path, "sneaky", "sneaky==1.0\n")
    assert any(message in caught.value.message for message in messages), caught.value.message
    assert caught.value.code == "build:user:requirements"
    assert not list((data_dir / "built-wheels").glob("*/*"))
    assert not list((data_dir / "wheelhouse").glob("numpy*"))


def wheel_index(root: Path, name: str, version: str, files: dict[str, bytes]) -> str:
    """A PEP 503 index folder serving one wheel; returns its file: URL."""
    folder = root / "files"
    folder.mkdir(parents=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    wheel.write_bytes(wheel_bytes(name, version, files))
    project = root / "simple" / name
    project.mkdir(parents=True)
    link = f"file://{wheel}#sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}"
    (project / "index.html").write_text(f'<html><body><a href="{link}">{wheel.name}</a></body></html>\n')
    (root / "simple" / "index.html").write_text(f'<html><body><a href="{name}/">{name}</a></body></html>\n')
    return f"file://{root / 'simple'}/"


def test_an_allowed_index_is_fetched_from_and_its_files_serve_only_builds_that_name_it(tmp_path):
    data_dir = tmp_path / "data"
    mirror = wheel_index(tmp_path / "mirror", "mirrorpkg", "1.0", {"mirrorpkg/__init__.py": b"WHERE = 'mirror'\n"})
    sandbox = "bwrap" if bwrap_works() else "none"
    nowhere = f"file://{tmp_path}/no-index/"
    config = LocalConfig(data_dir=data_dir, sandbox=sandbox, pip_index_url=nowhere, allowed_index_urls=(mirror,))
    runtime = LocalRuntime(config)
    env, log = build(runtime, tmp_path, "named", f"--index-url {mirror}\nmirrorpkg==1.0\n")
    assert "packages come from the index(es) requirements.txt names" in log
    assert site_file(env, "mirrorpkg/__init__.py").read_text() == "WHERE = 'mirror'\n"
    assert not list(data_dir.glob("wheelhouse/mirrorpkg*"))
    assert len(list(data_dir.glob("wheelhouse-by-index/*/mirrorpkg-1.0-py3-none-any.whl"))) == 1
    # Another build that does not name the index never gets the mirror's package, cached or not.
    with pytest.raises(BuildError) as caught:
        build(runtime, tmp_path, "unnamed", "mirrorpkg==1.0\n")
    assert caught.value.code == "build:user:requirements"
    # Without the operator's allow-list the same file does not build at all.
    strict = LocalRuntime(LocalConfig(data_dir=data_dir, sandbox=sandbox, pip_index_url=nowhere))
    with pytest.raises(BuildError) as caught:
        build(strict, tmp_path, "strict", f"--index-url {mirror}\nmirrorpkg==1.0\n")
    assert caught.value.code == "build:user:requirements"
    assert "installer options" in caught.value.message


@needs_bwrap
def test_a_wheel_built_with_a_named_index_is_not_shared_with_builds_of_the_default_index(tmp_path):
    """The same archive built with an allowed index named (its build requirements come from there) is cached apart."""
    data_dir = tmp_path / "data"
    index = source_index(tmp_path / "index", "srconly", "1.0", {"srconly/__init__.py": "VALUE = 1\n"})
    config = LocalConfig(data_dir=data_dir, sandbox="bwrap", pip_index_url=index, allowed_index_urls=(index,))
    runtime = LocalRuntime(config)
    _env, log = build(runtime, tmp_path, "named", f"--index-url {index}\nsrconly==1.0\n")
    assert "BACKEND RAN" in log
    _env, log = build(runtime, tmp_path, "default", "srconly==1.0\n")
    assert "BACKEND RAN" in log  # built again, not taken from the named index's build
    assert len(list((data_dir / "built-wheels").glob("*/srconly-1.0-py3-none-any.whl"))) == 2
    _env, log = build(runtime, tmp_path, "default-again", "srconly>=1.0\n")
    assert "BACKEND RAN" not in log


@pytest.mark.parametrize("variant", ["local", "local-nosandbox"])
def test_an_execution_runs_from_the_linked_environment(variant):
    """The linked files are readable where user code runs: in the sandbox, and as another uid without one."""
    from .conftest import RuntimeUnderTest, _local, _private_dir

    if variant == "local" and not bwrap_works():
        pytest.skip("bubblewrap does not work here")
    data_dir, source = _private_dir("linked"), _private_dir("linked-src")
    try:
        runtime, config = _local(variant, data_dir)
        (data_dir / "wheelhouse").mkdir()
        wheel = wheel_bytes("cachedpkg", "2.0", {"cachedpkg/__init__.py": b"VALUE = 'good'\n"})
        (data_dir / "wheelhouse" / "cachedpkg-2.0-py3-none-any.whl").write_bytes(wheel)
        rut = RuntimeUnderTest(variant, runtime, config, source)
        program = "import cachedpkg\n\ndef run(data=None, params=None):\n    return {'value': cachedpkg.VALUE}\n"
        handle = rut.build(program, requirements="cachedpkg==2.0\n")
        env = Path(handle.env_dir)  # type: ignore[attr-defined]
        (cached,) = cache_copies(data_dir, "cachedpkg/__init__.py")
        linked = os.stat(site_file(env, "cachedpkg/__init__.py")).st_ino == os.stat(cached).st_ino
        assert linked == (variant == "local" or os.geteuid() == 0)
        _state, output, final = rut.run(handle)
        assert final is not None, output
        assert final.payload["result"] == {"value": "good"}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)
