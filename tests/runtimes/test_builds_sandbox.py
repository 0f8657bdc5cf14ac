"""Package code never runs with the platform's network or rights (issue 16).

A real source archive whose build backend tries to connect to a loopback listener the test
starts, to write outside its folder and to plant a wheel in the platform's cache. With
bubblewrap the build runs it without network and with nothing writable but its own folders:
every attempt fails. Without a sandbox the build refuses to run it at all.
"""

from __future__ import annotations

import base64
import hashlib
import io
import socket
import tarfile
import threading
import uuid
import zipfile
from pathlib import Path

import pytest

from runtimes import BuildError, BuildSpec
from runtimes.local import LocalConfig, LocalRuntime

pytestmark = pytest.mark.slow

BACKEND = """
import base64, hashlib, os, socket, zipfile

PORT = {port}
TARGETS = {targets!r}
SECRET = {secret!r}


def _attack():
    try:
        with open(SECRET) as fh:
            fh.read(1)
        print("ATTACK: read the platform's code", flush=True)
    except OSError as exc:
        print(f"ATTACK: platform code unreadable: {{exc}}", flush=True)
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=3).close()
        print("ATTACK: connected", flush=True)
    except OSError as exc:
        print(f"ATTACK: connect failed: {{exc}}", flush=True)
    for target in TARGETS:
        try:
            with open(target, "w") as fh:
                fh.write("planted")
            print(f"ATTACK: wrote {{target}}", flush=True)
        except OSError as exc:
            print(f"ATTACK: write failed: {{exc}}", flush=True)


def get_requires_for_build_wheel(config_settings=None):
    _attack()
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _attack()
    files = {{
        "evilpkg/__init__.py": b"VALUE = 1\\n",
        "evilpkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: evilpkg\\nVersion: 1.0\\n",
        "evilpkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{name}},sha256={{digest}},{{len(data)}}")
    record.append("evilpkg-1.0.dist-info/RECORD,,")
    files["evilpkg-1.0.dist-info/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = "evilpkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return name
"""


#: A file of the platform's code (its settings), which no package code may read.
PLATFORM_FILE = Path(__file__).resolve().parents[2] / "planqk_portal" / "settings.py"
#: A file of the worker's home (outside every folder the build may write), removed by the fixture.
HOME_FILE = Path.home() / f".planqk-attack-{uuid.uuid4().hex}"


class Listener:
    """A loopback TCP listener that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.sock.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stopped = True
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()
    HOME_FILE.unlink(missing_ok=True)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def hostile_index(root: Path, *, port: int, targets: list[str]) -> str:
    """A PEP 503 index folder serving evilpkg 1.0 as a source archive only; returns its file: URL."""
    files = root / "files"
    files.mkdir(parents=True)
    sdist = files / "evilpkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        pyproject = b'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        _add(tar, "evilpkg-1.0/pyproject.toml", pyproject)
        backend = BACKEND.format(port=port, targets=targets, secret=str(PLATFORM_FILE))
        _add(tar, "evilpkg-1.0/backend.py", backend.encode())
        _add(tar, "evilpkg-1.0/PKG-INFO", b"Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    project = root / "simple" / "evilpkg"
    project.mkdir(parents=True)
    link = f"file://{sdist}#sha256={digest}"
    (project / "index.html").write_text(f'<html><body><a href="{link}">evilpkg-1.0.tar.gz</a></body></html>\n')
    (root / "simple" / "index.html").write_text('<html><body><a href="evilpkg/">evilpkg</a></body></html>\n')
    return f"file://{root / 'simple'}/"


def user_code(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "__init__.py").write_text("")
    (root / "src" / "program.py").write_text("def run(data=None, params=None):\n    return {}\n")
    return root


def setup(tmp_path: Path, listener: Listener, sandbox: str, installer: str = "uv"):
    data_dir = tmp_path / "data"
    outside = tmp_path / "outside.txt"
    planted = data_dir / "wheelhouse" / "evilpkg-9.9-py3-none-any.whl"
    targets = [str(outside), str(planted), str(HOME_FILE)]
    index = hostile_index(tmp_path / "index", port=listener.port, targets=targets)
    config = LocalConfig(data_dir=data_dir, sandbox=sandbox, pip_index_url=index, installer=installer)
    spec = BuildSpec(version_id="hostile-1", source_dir=user_code(tmp_path / "code"), requirements="evilpkg==1.0\n")
    return LocalRuntime(config), spec, outside, planted


def bwrap_works() -> bool:
    runtime = LocalRuntime(LocalConfig(data_dir=Path("/nonexistent"), sandbox="bwrap"))
    return runtime.sandbox.problem() is None


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap does not work here")
@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_in_the_sandbox_the_build_backend_reaches_no_network_and_writes_nothing_outside(tmp_path, listener, installer):
    runtime, spec, outside, planted = setup(tmp_path, listener, "bwrap", installer)
    home_file = HOME_FILE
    lines: list[str] = []
    result = runtime.build(spec, log=lines.append)
    log = "\n".join(lines)
    assert "ATTACK: connect failed" in log, log
    assert "ATTACK: connected" not in log
    assert "ATTACK: platform code unreadable" in log
    assert "ATTACK: read the platform's code" not in log
    # Writes to paths of the host land in the sandbox's own throw-away folders, if anywhere.
    assert "ATTACK: write failed: [Errno 30] Read-only file system" in log
    assert listener.connections == 0
    assert not outside.exists()
    assert not home_file.exists()
    assert not planted.exists()
    # The wheel package code built stays with this build; the shared cache holds only fetched files.
    assert not list((tmp_path / "data" / "wheelhouse").glob("evilpkg*"))
    env = Path(result.build.env_dir)  # type: ignore[attr-defined]
    assert list(env.glob("lib/python*/site-packages/evilpkg/__init__.py"))
    assert "==> fetch" in log
    assert "<== install done in" in log


def test_without_a_sandbox_the_build_refuses_to_run_package_code(tmp_path, listener):
    runtime, spec, outside, planted = setup(tmp_path, listener, "none")
    lines: list[str] = []
    with pytest.raises(BuildError) as caught:
        runtime.build(spec, log=lines.append)
    assert caught.value.code == "build:user:needs-sandbox"
    assert "refuses" in caught.value.message
    log = "\n".join(lines)
    assert "ATTACK" not in log  # the backend never ran
    assert listener.connections == 0
    assert not outside.exists()
    assert not planted.exists()


def test_a_requirement_set_fetched_once_builds_again_without_the_network(tmp_path):
    """A wheel in the platform's cache is installed from there; the index (here: none) is not asked."""
    data_dir = tmp_path / "data"
    wheelhouse = data_dir / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    files = {
        "cachedpkg/__init__.py": b"",
        "cachedpkg-2.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: cachedpkg\nVersion: 2.0\n",
        "cachedpkg-2.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
        for n, d in files.items()
    ]
    files["cachedpkg-2.0.dist-info/RECORD"] = ("\n".join([*record, "cachedpkg-2.0.dist-info/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(wheelhouse / "cachedpkg-2.0-py3-none-any.whl", "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    # An index that does not exist: any download attempt would fail the build.
    sandbox = "bwrap" if bwrap_works() else "none"
    config = LocalConfig(data_dir=data_dir, sandbox=sandbox, pip_index_url=f"file://{tmp_path}/no-index/")
    runtime = LocalRuntime(config)
    spec = BuildSpec(version_id="cached-1", source_dir=user_code(tmp_path / "code"), requirements="cachedpkg==2.0\n")
    lines: list[str] = []
    runtime.build(spec, log=lines.append)
    log = "\n".join(lines)
    assert "every package was in the cache" in log
    assert "==> fetch" not in log
