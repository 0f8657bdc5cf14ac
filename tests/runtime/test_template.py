"""The user code template: archives, `python -m src`, write_template, the API spec, the runner."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from planqk_template import TEMPLATE_PATHS, build_tar_gz, build_zip, template_files, write_template
from tests.runtime.helpers import run_runner

LAYOUT = {
    "Dockerfile",
    "openapi-spec.yml",
    "environment.yml",
    "requirements.txt",
    "input/data.json",
    "input/params.json",
    "src/__init__.py",
    "src/__main__.py",
    "src/program.py",
    "src/libs/__init__.py",
    "src/libs/return_objects.py",
    "README.md",
}


def python_m_src(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "src", *args], cwd=folder, capture_output=True, text=True, timeout=60)


def test_template_has_exactly_the_documented_layout():
    assert set(template_files()) == LAYOUT
    assert list(template_files()) == list(TEMPLATE_PATHS)


def test_zip_unpacks_without_a_top_level_folder_and_python_m_src_prints_the_sum(tmp_path):
    with zipfile.ZipFile(io.BytesIO(build_zip())) as archive:
        assert set(archive.namelist()) == LAYOUT
        archive.extractall(tmp_path)
    completed = python_m_src(tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.splitlines()[-1]) == {"result": {"sum": 420.69}, "metadata": None}


def test_tar_gz_unpacks_and_python_m_src_prints_the_sum(tmp_path):
    with tarfile.open(fileobj=io.BytesIO(build_tar_gz()), mode="r:gz") as archive:
        names = {member.name for member in archive.getmembers() if member.isfile()}
        assert names == LAYOUT
        archive.extractall(tmp_path, filter="data")
    completed = python_m_src(tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.splitlines()[-1])["result"] == {"sum": 420.69}


def test_archives_are_reproducible():
    assert build_zip() == build_zip()
    assert build_tar_gz() == build_tar_gz()


def test_round_off_floors_the_sum(tmp_path):
    write_template(tmp_path)
    (tmp_path / "input" / "params.json").write_text('{"round_off": true}')
    completed = python_m_src(tmp_path)
    assert json.loads(completed.stdout.splitlines()[-1])["result"] == {"sum": 420}


def test_python_m_src_exits_1_on_an_error_response(tmp_path):
    write_template(tmp_path)
    (tmp_path / "input" / "data.json").write_text('{"values": "not a list"}')
    completed = python_m_src(tmp_path)
    assert completed.returncode == 1
    assert json.loads(completed.stdout.splitlines()[-1])["code"] == "INVALID_VALUES"


def test_write_template_creates_the_folder_and_names_the_service(tmp_path):
    dest = tmp_path / "my-service"
    write_template(dest, name='Quantum "Sum"')
    assert {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()} == LAYOUT
    spec = yaml.safe_load((dest / "openapi-spec.yml").read_text())
    assert spec["info"]["title"] == 'Quantum "Sum"'
    assert (dest / "README.md").read_text().startswith('# Quantum "Sum"\n')
    validate(spec)


def test_write_template_refuses_to_overwrite_and_writes_nothing(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "program.py").write_text("# my precious code\n")
    with pytest.raises(FileExistsError, match=r"src/program\.py"):
        write_template(tmp_path)
    assert (tmp_path / "src" / "program.py").read_text() == "# my precious code\n"
    assert not (tmp_path / "Dockerfile").exists()


def test_openapi_spec_is_valid_and_describes_the_whole_service_api():
    spec = yaml.safe_load(template_files()["openapi-spec.yml"])
    validate(spec)
    assert spec["openapi"].startswith("3.0")
    paths = spec["paths"]
    assert set(paths) == {"/", "/{id}", "/{id}/result", "/{id}/interim-results", "/{id}/cancel", "/{id}/logs"}
    assert set(paths["/"]) == {"get", "post"}
    assert "put" in paths["/{id}/cancel"]
    assert "409" in paths["/{id}/result"]["get"]["responses"]
    schemas = spec["components"]["schemas"]
    assert schemas["JobStatus"]["enum"] == ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"]
    assert set(schemas["Job"]["properties"]) == {"id", "status", "createdAt", "startedAt", "endedAt"}
    assert set(schemas["ExecutionInput"]["properties"]) == {"data", "dataRef", "params", "paramsRef"}
    assert set(schemas["DataPoolReference"]["required"]) == {"dataPoolId", "dataSourceDescriptorId", "fileId"}
    assert schemas["Timestamp"]["pattern"] == r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert spec["security"] == [{"bearerAuth": []}]


def test_the_runner_on_the_template_gives_the_sum(tmp_path):
    write_template(tmp_path)
    run = run_runner(tmp_path, input_dir=tmp_path / "input")
    assert run.returncode == 0, run.stderr
    assert run.final.payload == {"result": {"sum": 420.69}, "metadata": None}


def test_dockerfile_builds_on_the_configurable_base_image_and_runs_the_runner():
    dockerfile = template_files()["Dockerfile"].decode()
    assert "ARG BASE_IMAGE=planqk/python-base:3.11\nFROM ${BASE_IMAGE}\n" in dockerfile
    assert "pip install --no-cache-dir -r /app/requirements.txt" in dockerfile
    assert 'CMD ["python", "-m", "planqk_runtime"]' in dockerfile
