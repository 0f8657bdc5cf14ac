"""The base image and the template's Dockerfile, run exactly as service-platform.md tells users.

The base image is built by scripts/build-base-image.sh (debootstrap, no registry) once and kept:
the script does nothing when it is up to date. Every other image and container is removed.
"""

from __future__ import annotations

import base64
import os
import pty
import select
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from planqk_runtime.protocol import final_response
from planqk_samples import write_sample

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# service-platform.md's `base64 -w 0` of the template's input.
DATA_B64 = "eyJ2YWx1ZXMiOiBbMTAwLCA1MCwgMjAwLCA3MCwgMC42OV19"
PARAMS_B64 = "eyJyb3VuZF9vZmYiOiBmYWxzZX0="


def docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def docker(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def run_in_a_terminal(argv: list[str], *, limit: float = 300) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal as stdin/stdout/stderr, as `docker run -it` needs."""
    master, slave = pty.openpty()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + limit  # a safety net against a hung engine, not an assertion
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            output.extend(chunk)
        returncode = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return returncode, output.decode("utf-8", errors="replace")


def build_image(folder: Path, base: str) -> str:
    tag = f"planqk-test-service:{uuid.uuid4().hex[:12]}"
    completed = docker(
        "build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(folder), timeout=1800
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return tag


@pytest.fixture(scope="module")
def sum_service(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The sum sample (the template itself) built with the template's Dockerfile."""
    folder = tmp_path_factory.mktemp("planqk_service")
    write_sample("sum", folder)
    tag = build_image(folder, base_image)
    yield tag, folder
    docker("rmi", "-f", tag)


def container_name() -> str:
    return f"planqk-test-{uuid.uuid4().hex[:12]}"


def assert_sum(returncode: int, output: str) -> None:
    assert returncode == 0, output
    response = final_response(output)
    assert response is not None, output
    assert response.payload == {"result": {"sum": 420.69}, "metadata": None}


def test_base_image_has_the_runner_a_venv_and_a_non_root_user(base_image):
    completed = docker(
        "run", "--rm", "--network", "none", base_image,
        "sh", "-c", "id -un; id -u; pwd; command -v python; command -v pip; python -c 'import planqk_runtime'",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["planqk", "1000", "/app", "/opt/venv/bin/python", "/opt/venv/bin/pip"]
    version = docker("run", "--rm", "--network", "none", base_image, "python", "--version")
    assert version.stdout.startswith("Python 3.11")


def test_docker_run_with_input_files_as_documented(sum_service):
    tag, folder = sum_service
    returncode, output = run_in_a_terminal(
        [
            "docker", "run", "-it", "--rm", "--name", container_name(),
            "-e", "BASE64_ENCODED=false",
            "-e", "LOG_LEVEL=DEBUG",
            "-v", f"{folder}/input/data.json:/var/input/data/data.json",
            "-v", f"{folder}/input/params.json:/var/input/params/params.json",
            tag,
        ]
    )  # fmt: skip
    assert_sum(returncode, output)
    assert "reading data from /var/input/data/data.json" in output  # LOG_LEVEL=DEBUG reached the runner


def test_docker_run_with_base64_environment_variables_as_documented(sum_service):
    tag, _ = sum_service
    returncode, output = run_in_a_terminal(
        ["docker", "run", "-it", "--rm", "--name", container_name(),
         "-e", f"DATA_VALUE={DATA_B64}", "-e", f"PARAMS_VALUE={PARAMS_B64}", tag]
    )  # fmt: skip
    assert_sum(returncode, output)


def test_docker_run_without_network_and_with_the_docker_runtime_restrictions(sum_service):
    tag, folder = sum_service
    restrictions = ["--network", "none", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    files = docker(
        "run", "--rm", "--name", container_name(), *restrictions,
        "-e", "BASE64_ENCODED=false",
        "-v", f"{folder}/input/data.json:/var/input/data/data.json:ro",
        "-v", f"{folder}/input/params.json:/var/input/params/params.json:ro",
        tag,
    )  # fmt: skip
    assert_sum(files.returncode, files.stdout)
    assert files.stdout.splitlines()[-1].startswith("Job:ResultResponse: ")
    env = docker(
        "run", "--rm", "--name", container_name(), *restrictions,
        "-e", f"DATA_VALUE={DATA_B64}", "-e", f"PARAMS_VALUE={PARAMS_B64}", tag,
    )  # fmt: skip
    assert_sum(env.returncode, env.stdout)


def test_an_error_response_makes_the_container_exit_non_zero(sum_service):
    tag, _ = sum_service
    bad = base64.b64encode(b'{"values": "not numbers"}').decode()
    completed = docker("run", "--rm", "--network", "none", "--name", container_name(), "-e", f"DATA_VALUE={bad}", tag)
    assert completed.returncode == 1
    response = final_response(completed.stdout)
    assert response is not None
    assert response.payload["code"] == "INVALID_VALUES"


def test_pip_in_the_template_dockerfile_installs_requirements(base_image, tmp_path):
    write_sample("sum", tmp_path)
    (tmp_path / "requirements.txt").write_text("six>=1.16\n")
    (tmp_path / "src" / "program.py").write_text(
        "import six\n\n\ndef run(data=None, params=None):\n    return {'six': six.__version__}\n"
    )
    tag = build_image(tmp_path, base_image)
    try:
        completed = docker("run", "--rm", "--network", "none", "--name", container_name(), tag)
        assert completed.returncode == 0, completed.stderr
        assert final_response(completed.stdout).payload["result"]["six"].startswith("1.")
    finally:
        docker("rmi", "-f", tag)
