"""The current generation end to end (issue 21): a project laid out as Kipu's qhub-serve expects
is uploaded as a zip, builds as CURRENT, runs as a job on the local runtime, and its result,
its result file and its secret end up where they should (the secret nowhere stored)."""

from __future__ import annotations

import re
import textwrap

import pytest
from django.core.files.storage import default_storage

from jobs import engine
from jobs.admission import execution_admit
from jobs.models import InterimResult, Job, JobResultFile, JobStatus
from planqk_portal.errors import ApplicationError
from services import builds, services
from services.models import BuildStatus, Generation
from tests.jobs.conftest import log_text
from tests.services.helpers import build_log, make_zip

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]


@pytest.fixture
def user(user):
    """Providers need a valid card to create services (payments); Stripe's 4242 test card."""
    from payments.testing import add_test_card

    add_test_card(user)
    return user


@pytest.fixture
def private_media(settings, tmp_path):
    """Archives and result files under tmp_path (no worker process reads them)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


#: What a caller sends as $secrets; it must appear in no stored log and not in the job row.
SECRET = "tok-5f0c2b9e-very-private-7d1a"

QHUB_PROGRAM = """\
import json
import logging
import os

from pydantic import BaseModel
from qhub.commons.secret import SecretValue

logger = logging.getLogger(__name__)


class InputData(BaseModel):
    values: list[float]


class InputParams(BaseModel):
    round_off: bool = False


class Result(BaseModel):
    total: float
    count: int


def run(data: InputData, params: InputParams, api_token: SecretValue) -> Result:
    token = api_token.unwrap()
    # A careless program: the platform must keep these out of every stored log.
    print(f"calling the backend with {token}")
    logger.warning("token again: %s", token)
    print({"token": token})
    print("PlanQK:Job:InterimResult: " + json.dumps({"progress": 0.5, "token": token}), flush=True)
    total = sum(data.values)
    if params.round_off:
        total = round(total)
    with open(os.path.join(os.environ["OUTPUT_DIRECTORY"], "values.csv"), "w") as fh:
        fh.write("value\\n" + "".join(f"{v}\\n" for v in data.values))
    return Result(total=total, count=len(data.values))
"""

QHUB_SPEC = b"""openapi: 3.0.3
info: {title: qhub sum, version: "1.0"}
paths:
  /:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [data, $secrets]
              properties:
                data:
                  type: object
                  required: [values]
                  properties:
                    values: {type: array, items: {type: number}}
                params:
                  type: object
                  properties:
                    round_off: {type: boolean}
                $secrets:
                  type: object
                  properties:
                    api_token: {type: string}
            example:
              data: {values: [1, 2, 3.5]}
              params: {round_off: false}
              $secrets: {api_token: example-token}
      responses:
        "201": {description: created}
"""


def qhub_project() -> bytes:
    return make_zip(
        {
            "src/program.py": QHUB_PROGRAM.encode(),
            "requirements.txt": b"qhub-commons==1.2.2\n",
            "openapi-spec.yml": QHUB_SPEC,
        }
    )


def build(user, name: str, archive: bytes):
    service = services.service_create(owner=user, name=name, archive=archive)
    version = service.versions.get()
    builds.service_version_build(version_id=version.id)
    version.refresh_from_db()
    return version


def run(version, owner, **kwargs) -> Job:
    job = execution_admit(service_version=version, owner=owner, **kwargs)
    engine.execute_job(str(job.id))
    return Job.objects.get(pk=job.pk)


def stored_text(job: Job) -> str:
    """Everything the job row and its logs hold, as text."""
    row = Job.objects.filter(pk=job.pk).values().get()
    return repr(row) + log_text(job)


def test_a_qhub_serve_project_builds_as_current_runs_and_keeps_its_file_and_no_secret(user):
    version = build(user, "qhub-sum", qhub_project())
    blog = build_log(version)
    assert version.status == BuildStatus.READY, blog
    assert version.generation == Generation.CURRENT
    assert "Service generation: current" in blog
    assert "the API spec's example input runs" in blog
    assert "example-token" not in blog  # the example's own secret is redacted from the build log

    job = run(
        version,
        user,
        data={"data": {"values": [100, 50, 200, 70, 0.69]}, "params": {"round_off": False}},
        secrets={"api_token": SECRET},
        tags=["nightly", "qhub"],
    )
    logs = log_text(job)
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_detail, logs)
    # The result is run()'s return value itself (the pydantic model's JSON), not wrapped.
    assert job.result == {"total": 420.69, "count": 5}
    assert job.tags == ["nightly", "qhub"]

    files = list(JobResultFile.objects.filter(job=job))
    assert [f.name for f in files] == ["values.csv"]
    assert files[0].media_type == "text/csv"
    with files[0].file.open("rb") as fh:
        assert fh.read() == b"value\n100.0\n50.0\n200.0\n70.0\n0.69\n"
    assert files[0].size_bytes == len(b"value\n100.0\n50.0\n200.0\n70.0\n0.69\n")
    assert files[0].file.name.startswith(f"job-results/{job.id}/")

    # The program printed and logged its secret three ways; the stored log shows none of them.
    assert logs.count("[redacted]") >= 3, logs
    assert SECRET not in stored_text(job)
    interims = list(InterimResult.objects.filter(job=job).values_list("payload", flat=True))
    assert interims == [{"progress": 0.5, "token": "[redacted]"}]
    job.refresh_from_db()
    assert job.secrets_ciphertext is None


def test_input_that_misses_a_required_key_is_refused_before_a_job_exists(user):
    version = build(user, "qhub-sum-strict", qhub_project())
    assert version.status == BuildStatus.READY, build_log(version)
    with pytest.raises(ApplicationError) as refused:
        execution_admit(service_version=version, owner=user, data={"data": {"values": ["x"]}})
    assert refused.value.code == "input:invalid"
    assert refused.value.status == 422
    paths = [e["path"] for e in refused.value.extra["errors"]]
    assert "data.values[0]" in paths  # named from the request's top level, not data.data...
    assert not Job.objects.filter(service_version=version).exists()


def test_a_missing_secret_fails_the_job_with_an_input_error_naming_it(user):
    version = build(user, "qhub-sum-nosecret", qhub_project())
    # The spec requires $secrets, so admission refuses first; bypass the spec to reach the runner.
    version.api_spec = ""
    version.save(update_fields=["api_spec"])
    job = run(version, user, data={"data": {"values": [1]}})
    assert job.status == JobStatus.FAILED
    assert job.error_code == "INVALID_INPUT"
    assert "api_token" in job.error_detail
    assert "$secrets" in job.error_detail


HOSTILE_PROGRAM = """\
import os

def run(count: int = 30) -> dict:
    out = os.environ["OUTPUT_DIRECTORY"]
    made = []
    def attempt(what, action):
        try:
            action()
            made.append(what)
        except OSError as exc:
            print(what, "failed:", exc)
    attempt("symlink", lambda: os.symlink("/etc/passwd", os.path.join(out, "passwd")))
    attempt("escape", lambda: open(os.path.join(out, "../escape.txt"), "w").write("outside"))
    attempt("fifo", lambda: os.mkfifo(os.path.join(out, "a-fifo")))
    attempt("folder", lambda: os.mkdir(os.path.join(out, "folder")))
    attempt("nested", lambda: open(os.path.join(out, "folder", "inner.txt"), "w").write("x"))
    attempt("big", lambda: open(os.path.join(out, "big.bin"), "wb").write(b"x" * (2 * 1024 * 1024)))
    attempt("odd", lambda: open(os.path.join(out, ".hidden\\nname \\\\..x \\u00fc"), "w").write("odd"))
    for i in range(count):
        with open(os.path.join(out, f"f{i:03d}.txt"), "w") as fh:
            fh.write(str(i))
    return {"made": made}
"""


def test_hostile_output_directory_links_fifos_oversized_and_too_many_files(user, settings, make_version):
    settings.PLANQK_JOB_RESULT_FILE_MAX_MB = 1
    settings.PLANQK_JOB_RESULT_FILES_MAX = 10
    version = make_version(user, "sum", program=HOSTILE_PROGRAM)
    version.generation = Generation.CURRENT
    version.save(update_fields=["generation"])
    job = run(version, user, data={"count": 30})
    logs = log_text(job)
    assert job.status == JobStatus.SUCCEEDED, (job.error_detail, logs)
    assert {"symlink", "fifo", "big", "odd"} <= set(job.result["made"]), logs

    names = sorted(JobResultFile.objects.filter(job=job).values_list("name", flat=True))
    assert len(names) == 10  # the cap, in name order
    safe = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
    assert all(safe.match(name) and ".." not in name for name in names), names
    assert "passwd" not in names
    assert "a-fifo" not in names
    assert "big.bin" not in names
    assert not any("escape" in name or "inner" in name for name in names)
    for row in JobResultFile.objects.filter(job=job):
        assert row.file.name.startswith(f"job-results/{job.id}/")
        with row.file.open("rb") as fh:
            assert b"root:" not in fh.read()
    # The odd name (a dot first, a line break, a backslash, '..', a space, a non-ASCII letter)
    # was kept under a safe one (among the first ten by its real name: '.' sorts before 'a').
    assert "hidden_name__x_" in names, names
    # Every refusal is said in the log.
    assert "'passwd' is a link: not kept" in logs
    assert "'a-fifo' is not a regular file: not kept" in logs
    assert "'big.bin' is larger than 1048576 bytes: not kept" in logs
    assert "is a folder" in logs
    assert "more than 10 result files" in logs
    # Nothing of the job landed in storage outside its folder.
    _, top = default_storage.listdir("job-results")
    assert top == []


def test_2022_programs_get_an_output_directory_too(user, make_version):
    program = textwrap.dedent(
        """\
        import os

        def run(data=None, params=None):
            with open(os.path.join(os.environ["OUTPUT_DIRECTORY"], "report.txt"), "w") as fh:
                fh.write("hello")
            return {"ok": True}
        """
    )
    version = make_version(user, "sum", program=program)
    assert version.generation == Generation.DOCUMENTED
    job = run(version, user, data={})
    assert job.status == JobStatus.SUCCEEDED, log_text(job)
    assert job.result == {"ok": True}  # the documented result shape, unchanged
    assert list(JobResultFile.objects.filter(job=job).values_list("name", flat=True)) == ["report.txt"]


DOCKER_PROGRAM = """\
import os


class SecretValue:
    # The shape of qhub.commons.secret.SecretValue (the runner recognises it by its name).
    def __init__(self, value):
        self._value = value

    def unwrap(self):
        return self._value


def run(values: list[float], api_token: SecretValue) -> dict:
    token = api_token.unwrap()
    print("using", token)
    out = os.environ["OUTPUT_DIRECTORY"]
    with open(os.path.join(out, "report.txt"), "w") as fh:
        fh.write(f"{len(values)} values")
    os.symlink("/etc/passwd", os.path.join(out, "passwd"))
    with open(os.path.join(out, "big.bin"), "wb") as fh:
        fh.write(b"x" * (2 * 1024 * 1024))
    return {"total": sum(values)}
"""


@pytest.mark.docker
def test_a_current_version_on_docker_keeps_its_files_and_no_secret(user, settings, make_version, base_image):
    settings.PLANQK_JOB_RESULT_FILE_MAX_MB = 1
    version = make_version(user, "sum", program=DOCKER_PROGRAM, runtime="docker")
    version.generation = Generation.CURRENT
    version.save(update_fields=["generation"])
    job = run(version, user, data={"values": [1, 2, 3]}, secrets={"api_token": SECRET})
    logs = log_text(job)
    assert job.status == JobStatus.SUCCEEDED, (job.error_detail, logs)
    assert job.result == {"total": 6}
    files = {row.name: row for row in JobResultFile.objects.filter(job=job)}
    assert set(files) == {"report.txt"}
    with files["report.txt"].file.open("rb") as fh:
        assert fh.read() == b"3 values"
    # The container's supervisor refused the link and the big file, and said so.
    assert "'passwd' is a link: not kept" in logs
    assert "'big.bin' is larger than 1048576 bytes: not kept" in logs
    assert "using [redacted]" in logs
    assert SECRET not in stored_text(job)


PLAIN_CURRENT = b"def run(values: list, scale: int = 1) -> dict:\n    return {'total': sum(values) * scale}\n"
DICT_PROGRAM = b"def run(data=None, params=None):\n    return {'data': data, 'params': params}\n"


def test_a_current_project_without_a_spec_builds_and_takes_any_object(user):
    version = build(user, "no-spec", make_zip({"src/program.py": PLAIN_CURRENT}))
    blog = build_log(version)
    assert version.status == BuildStatus.READY, blog
    assert version.generation == Generation.CURRENT
    assert "No openapi-spec.yml: the input is any JSON object" in blog
    assert "InputData" not in version.api_spec  # not the 2022 template's spec any more
    job = run(version, user, data={"values": [1, 2], "scale": 3})
    assert job.status == JobStatus.SUCCEEDED, log_text(job)
    assert job.result == {"total": 9}


def test_planqk_json_decides_the_generation_and_a_bad_value_fails_the_build(user):
    # run(data, params) with plain dicts is the 2022 template, unless planqk.json says otherwise.
    current = build(
        user, "forced-current", make_zip({"src/program.py": DICT_PROGRAM, "planqk.json": b'{"generation": "current"}'})
    )
    assert current.status == BuildStatus.READY, build_log(current)
    assert current.generation == Generation.CURRENT
    assert 'planqk.json says "generation": "current"' in build_log(current)
    job = run(current, user, data={"data": {"a": 1}, "other": 2})
    # The current way: the request's top-level keys bound by name; its return value is the result.
    assert job.result == {"data": {"a": 1}, "params": None}

    bad = build(user, "bad-generation", make_zip({"planqk.json": b'{"generation": "2025"}'}))
    assert bad.status == BuildStatus.FAILED
    assert bad.build_error_code == "build:user:bad-generation"
    assert '"2022" or "current"' in bad.build_error


def test_secrets_are_stored_encrypted_and_erased_by_every_final_state(user):
    version = build(user, "secret-keeper", make_zip({"src/program.py": PLAIN_CURRENT}))
    job = execution_admit(service_version=version, owner=user, data={"values": [1]}, secrets={"api_token": SECRET})
    stored = bytes(Job.objects.values_list("secrets_ciphertext", flat=True).get(pk=job.pk))
    assert SECRET.encode() not in stored
    assert SECRET not in stored_text(job)
    from jobs.services import job_cancel

    job_cancel(job=job)  # PENDING: cancelled before it started
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.secrets_ciphertext is None


@pytest.mark.parametrize(
    ("secrets", "tags"),
    [
        ({"bad-name": "x"}, None),
        ({"ok": 1}, None),
        ("not an object", None),
        ({f"s{i}": "x" for i in range(33)}, None),
        (None, "not a list"),
        (None, ["x" * 101]),
        (None, ["line\nbreak"]),
    ],
)
def test_bad_secrets_and_tags_are_refused_before_a_job_exists(user, secrets, tags):
    version = build(user, "strict-secrets", make_zip({"src/program.py": PLAIN_CURRENT}))
    with pytest.raises(ApplicationError) as refused:
        execution_admit(service_version=version, owner=user, data={"values": [1]}, secrets=secrets, tags=tags)
    assert refused.value.status == 422
    assert refused.value.code == "input:invalid"
    assert not Job.objects.filter(service_version=version).exists()


def test_the_service_page_and_the_rest_version_object_show_the_generation(user, client, api_client):
    current = build(user, "shown-current", make_zip({"src/program.py": PLAIN_CURRENT}))
    documented = build(user, "shown-2022", make_zip({}))
    client.force_login(user)
    page = client.get(f"/services/{current.service_id}/").content.decode()
    assert 'data-generation="current"' in page
    assert "Current: typed run() parameters" in page
    assert 'data-generation="2022"' in client.get(f"/services/{documented.service_id}/").content.decode()
    body = api_client.get(f"/api/v1/services/{current.service_id}/versions/{current.pk}/").json()
    assert body["generation"] == "current"
    body = api_client.get(f"/api/v1/services/{documented.service_id}/versions/{documented.pk}/").json()
    assert body["generation"] == "2022"


FLOOD_PROGRAM = """\
import itertools
import os


def run() -> dict:
    out = os.environ["OUTPUT_DIRECTORY"]
    os.mkdir(os.path.join(out, "deep"))
    for i in itertools.count():
        # Files without end, half of them in a subfolder: the disk must not fill up.
        open(os.path.join(out, "deep" if i % 2 else "", f"f{i}"), "w").close()
"""


def test_a_program_flooding_its_output_directory_is_stopped(user, settings, make_version):
    settings.PLANQK_JOB_RESULT_FILES_MAX = 10
    version = make_version(user, "sum", program=FLOOD_PROGRAM, timeout_seconds=60)
    version.generation = Generation.CURRENT
    version.save(update_fields=["generation"])
    job = run(version, user, data={})
    assert job.status == JobStatus.FAILED
    # Stopped by the watch on the output directory, long before its timeout.
    assert job.error_code == "job:output-files-too-large", (job.error_code, job.error_detail)
    assert job.started_execution
