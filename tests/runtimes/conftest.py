"""Fixtures for the runtime contract suite: every runtime variant this machine can run.

The variants are real runtimes, never stand-ins:

- ``local``: the local runtime as configured by default (bubblewrap where it works, cgroups
  where /sys/fs/cgroup is writable);
- ``local-nosandbox``: ``PLANQK_SANDBOX=none`` (resource limits, a private network namespace
  when the worker is root, and an unprivileged uid);
- ``local-rlimits``: no sandbox and no cgroups: only setrlimit and the uid switch;
- ``docker``: the Docker runtime on the base image ``planqk/python-base:3.11``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from planqk_runtime.protocol import FinalResponse, final_response
from planqk_samples import sample_files
from runtimes.base import BuildSpec, ExecutionSpec, ExecutionState, Runtime
from runtimes.local import LocalConfig, LocalRuntime, accessible_to

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass
class RuntimeUnderTest:
    """A runtime plus how to build user code on it once per distinct program."""

    variant: str
    runtime: Runtime
    config: dict[str, Any]
    source_root: Path
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: list[dict[str, Any]] = field(default_factory=list)
    # Image tags are global on an engine: fixtures that share one must not share names.
    version_prefix: str = "test"

    def user_code(self, program: str | None = None, *, sample: str = "sum", requirements: str = "") -> Path:
        """A user code folder: a sample (default the template's sum) with another program."""
        files = dict(sample_files(sample))
        if program is not None:
            files["src/program.py"] = program.encode()
        files["requirements.txt"] = requirements.encode()
        digest = hashlib.sha256(json.dumps(sorted((k, v.hex()) for k, v in files.items())).encode()).hexdigest()
        folder = self.source_root / digest[:16]
        if not folder.exists():
            for path, content in files.items():
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                (folder / path).write_bytes(content)
        return folder

    def build(self, program: str | None = None, *, sample: str = "sum", requirements: str = "") -> dict[str, Any]:
        """Build the program once per session and return the build handle."""
        folder = self.user_code(program, sample=sample, requirements=requirements)
        if folder.name not in self.builds:
            spec = BuildSpec(
                version_id=f"{self.version_prefix}-{folder.name}", source_dir=folder, requirements=requirements
            )
            self.builds[folder.name] = self.runtime.build(spec, log=lambda line: None).build
        return self.builds[folder.name]

    def start(self, build: dict[str, Any], **limits: Any) -> dict[str, Any]:
        """Start an execution with small default limits."""
        values: dict[str, Any] = {
            "execution_id": f"t{uuid.uuid4().hex[:16]}",
            "build": build,
            "data": {},
            "params": {},
            "env": {},
            "memory_mb": 256,
            "cpus": 1.0,
            "timeout_seconds": 60,
            "max_pids": 64,
            "max_output_bytes": 1024 * 1024,
        }
        values.update(limits)
        handle = self.runtime.start(ExecutionSpec(**values))
        self.started.append(handle)
        return handle

    def wait(self, handle: dict[str, Any], limit: float = 180.0) -> ExecutionState:
        """Poll until the execution ends (``limit`` only guards against a hanging test)."""
        give_up = time.monotonic() + limit
        while True:
            state = self.runtime.poll(handle)
            if not state.running:
                return state
            assert time.monotonic() < give_up, f"execution {handle.execution_id} still running"
            time.sleep(0.1)

    def output(self, handle: dict[str, Any]) -> str:
        """The whole output so far, read incrementally as a log poller does."""
        text, offset = "", 0
        while True:
            chunk, offset = self.runtime.read_output(handle, offset)
            if not chunk:
                return text
            text += chunk

    def run(self, build: dict[str, Any], **limits: Any) -> tuple[ExecutionState, str, FinalResponse | None]:
        """Start, wait, read: the state, the output and the runner's final response."""
        handle = self.start(build, **limits)
        state = self.wait(handle)
        text = self.output(handle)
        return state, text, final_response(text)


def _private_dir(name: str) -> Path:
    # Not pytest's tmp_path: its parents are 0700, and user code runs as another uid.
    path = Path(tempfile.mkdtemp(prefix=f"planqk-rt-{name}-"))
    path.chmod(0o755)
    return path


def _system_python() -> str | None:
    """An interpreter that uid 65534 may run when there is no sandbox to bind one in."""
    if os.geteuid() != 0:
        return sys.executable
    for candidate in (getattr(sys, "_base_executable", sys.executable), SYSTEM_PYTHON):
        if candidate and os.path.exists(candidate) and accessible_to(candidate, 65534, 65534):
            probe = subprocess.run([candidate, "-c", "import venv, ensurepip"], capture_output=True)
            if probe.returncode == 0:
                return candidate
    return None


def _local(variant: str, data_dir: Path) -> tuple[Runtime, dict[str, Any]]:
    options: dict[str, Any] = {"data_dir": str(data_dir)}
    if variant in ("local-nosandbox", "local-rlimits"):
        python = _system_python()
        if python is None:
            pytest.skip("no Python that an unprivileged uid can run without a sandbox")
        options.update(sandbox="none", python=python)
    if variant == "local-rlimits":
        options["use_cgroups"] = False
    config = LocalConfig(**{**options, "data_dir": Path(options["data_dir"])})
    return LocalRuntime(config), {"kind": "local", **options}


def _docker(data_dir: Path, base_image: str) -> tuple[Runtime, dict[str, Any]]:
    import docker
    from runtimes.docker import DockerConfig, DockerRuntime

    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine answers: {exc}")
    return DockerRuntime(DockerConfig(data_dir=data_dir, base_image=base_image)), {
        "kind": "docker",
        "data_dir": str(data_dir),
        "base_image": base_image,
    }


_VARIANTS: dict[str, RuntimeUnderTest] = {}


@pytest.fixture(scope="session")
def runtime_cache() -> Iterator[dict[str, RuntimeUnderTest]]:
    yield _VARIANTS
    for rut in _VARIANTS.values():
        for handle in rut.started:
            try:
                rut.runtime.cleanup(handle)
            except Exception as exc:  # report, but let the other cleanups run
                print(f"cleanup of {handle.get('execution_id')} failed: {exc}")
        if rut.config["kind"] == "docker":
            for build in rut.builds.values():
                rut.runtime.remove_build(build)
        shutil.rmtree(rut.config["data_dir"], ignore_errors=True)
        shutil.rmtree(rut.source_root, ignore_errors=True)
    _VARIANTS.clear()


VARIANTS = [
    pytest.param("local", id="local"),
    pytest.param("local-nosandbox", id="local-nosandbox"),
    pytest.param("local-rlimits", id="local-rlimits"),
    pytest.param("docker", id="docker", marks=pytest.mark.docker),
]


@pytest.fixture(params=VARIANTS)
def rt(request: pytest.FixtureRequest, runtime_cache: dict[str, RuntimeUnderTest]) -> RuntimeUnderTest:
    variant = request.param
    if variant not in runtime_cache:
        data_dir = _private_dir(variant)
        if variant == "docker":
            runtime, config = _docker(data_dir, request.getfixturevalue("base_image"))
        else:
            runtime, config = _local(variant, data_dir)
        runtime_cache[variant] = RuntimeUnderTest(variant, runtime, config, _private_dir(f"{variant}-src"))
    return runtime_cache[variant]


def fresh_runtime(config: dict[str, Any]) -> Runtime:
    """A new runtime object from the JSON config (what a restarted worker would build)."""
    options = dict(config)
    kind = options.pop("kind")
    options["data_dir"] = Path(options["data_dir"])
    if kind == "docker":
        from runtimes.docker import DockerConfig, DockerRuntime

        return DockerRuntime(DockerConfig(**options))
    return LocalRuntime(LocalConfig(**options))


def processes_of(execution_id: str) -> list[int]:
    """Host processes that carry the execution's marker (readable as root or the same uid)."""
    needle = f"PLANQK_EXECUTION_ID={execution_id}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                    if stat[stat.rindex(")") + 2] not in "ZX":
                        found.append(int(entry.name))
        except OSError:
            continue
    return found
