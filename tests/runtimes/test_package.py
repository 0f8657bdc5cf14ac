"""The runtimes are a package of their own: no Django, typed handles that survive the database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtimes.docker import DockerBuildHandle, DockerExecutionHandle
from runtimes.local import LocalBuildHandle, LocalExecutionHandle

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_runtimes_does_not_import_django() -> None:
    code = (
        "import sys, runtimes, runtimes.local, runtimes.docker, runtimes.external\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert json.loads(done.stdout) == []


# What the database holds from before handles were typed: plain dicts with these keys.
OLD_LOCAL_BUILD = {
    "runtime": "local",
    "version_id": "v1",
    "env_key": "a" * 64,
    "env_dir": "/var/envs/" + "a" * 64,
    "build_dir": "/var/builds/v1",
    "python_version": "3.11.2",
    "reused": True,
}
OLD_LOCAL_EXECUTION = {
    "runtime": "local",
    "execution_id": "job-1",
    "pid": 4242,
    "pgid": 4242,
    "start_time": 123456,
    "dir": "/var/executions/job-1",
    "started_at": 1700000000.5,
    "timeout": 600,
    "max_output_bytes": 1024,
    "sandbox": "bwrap",
    "cgroup": None,
}
OLD_DOCKER_BUILD = {
    "runtime": "docker",
    "version_id": "v1",
    "image": "planqk-svc-v1",
    "image_id": "sha256:abc",
    "base_image": "planqk/python-base:3.11",
    "reused": False,
}
OLD_DOCKER_EXECUTION = {
    "runtime": "docker",
    "execution_id": "job-1",
    "container": "planqk-job-job-1",
    "container_id": "abc",
    "dir": "/var/containers/job-1",
    "started_at": 1700000000.5,
    "timeout": 600,
    "max_output_bytes": 1024,
}


@pytest.mark.parametrize(
    ("cls", "stored"),
    [
        (LocalBuildHandle, OLD_LOCAL_BUILD),
        (LocalExecutionHandle, OLD_LOCAL_EXECUTION),
        (DockerBuildHandle, OLD_DOCKER_BUILD),
        (DockerExecutionHandle, OLD_DOCKER_EXECUTION),
    ],
)
def test_handles_of_the_old_untyped_shape_still_load_and_round_trip(cls: type, stored: dict) -> None:
    handle = cls.from_json(json.loads(json.dumps(stored)))
    # Fields added since (such as an execution's uid) come back with their defaults.
    assert {key: value for key, value in handle.to_json().items() if key in stored} == stored
    assert cls.from_json(handle.to_json()) == handle


def test_a_handle_of_another_runtime_or_an_incomplete_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a handle of the local runtime"):
        LocalBuildHandle.from_json(OLD_DOCKER_BUILD)
    with pytest.raises(ValueError, match="incomplete"):
        LocalExecutionHandle.from_json({"runtime": "local"})
    with pytest.raises(ValueError):
        DockerExecutionHandle.from_json("job-1")  # type: ignore[arg-type]
