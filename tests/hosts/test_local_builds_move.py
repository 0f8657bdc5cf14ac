"""A local-runtime version built on host A runs on host B (issue 22 item 1): two worker "hosts"
on this machine, each with its own data directory, one database, broker and stored files.

Host A builds the version from its stored archive (its requirement, a tiny wheel, comes from a
file index both hosts are configured with); host B has none of its folders and materialises
them on its first job, from the build's lock and the version's archive. Edited handles and a
lock whose hash no file has fail the job with ``platform:build-unavailable``, unbilled.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from jobs.models import Job, JobStatus
from jobs.tasks import execute_job
from services.models import BUILD_FINAL_STATES, BuildStatus, ServiceVersion
from tests.hosts.test_host_loss import subscribed_job, usage_of
from tests.jobs.conftest import log_text, wait_final
from tests.runtimes.conftest import local_wheel

pytestmark = pytest.mark.django_db(transaction=True)

PROGRAM = """
from .libs.return_objects import ResultResponse

import {module}


def run(data=None, params=None):
    values = (data or {{}}).get("values", [])
    return ResultResponse(result={{"sum": sum(values), "module": {module}.VALUE}})
"""


def file_index(root: Path, name: str) -> str:
    """A PEP 503 folder index serving one fresh wheel ``name`` 1.0; returns its file: URL."""
    wheels = root / "wheels"
    local_wheel(wheels, name, "1.0")
    folder = root / "index" / name
    folder.mkdir(parents=True)
    for wheel in wheels.glob("*.whl"):
        shutil.copy(wheel, folder / wheel.name)
        (folder / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    return (root / "index").as_uri()


@pytest.fixture
def built_on_a(user, start_host, tmp_path):
    """``(version, module, host_a, host_b, build_log, env)``: a version built by host A's worker,
    READY; host B waits; ``env`` is what both hosts were started with."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from payments.testing import add_test_card
    from planqk_samples import sample_files
    from planqk_template import zip_bytes
    from services import services
    from tests.jobs.conftest import wait_for

    add_test_card(user)  # providers need a valid card to create services

    module = f"moving_{uuid.uuid4().hex[:8]}"
    index = file_index(tmp_path / "pypi", module.replace("_", "-"))
    env = {"PLANQK_PIP_INDEX_URL": index}
    # Host A alone while the version builds (whichever queue the build is routed to), host B after.
    host_a = start_host("host-a", env=env)
    files = {p: c for p, c in sample_files("sum").items() if p.startswith("src/") or p == "openapi-spec.yml"}
    files["src/program.py"] = PROGRAM.format(module=module).encode()
    files["requirements.txt"] = f"{module.replace('_', '-')}==1.0\n".encode()
    archive = SimpleUploadedFile("user_code.zip", zip_bytes(files), content_type="application/zip")
    service = services.service_create(owner=user, name=f"moving-{uuid.uuid4().hex[:6]}", archive=archive)
    version = service.versions.get()
    wait_for(lambda: ServiceVersion.objects.get(pk=version.pk).status in BUILD_FINAL_STATES, timeout=240)
    version.refresh_from_db()
    build_log = "".join(version.log_chunks.order_by("seq").values_list("text", flat=True))
    assert version.status == BuildStatus.READY, (version.build_error, build_log, host_a.log()[-3000:])
    host_b = start_host("host-b", queue=f"host-b-{uuid.uuid4().hex[:8]}", env=env)
    return version, module, host_a, host_b, build_log, env


def run_on(host, version, subscriber, **fields) -> Job:
    job = subscribed_job(version, subscriber, data={"values": [1, 2, 3]}, **fields)
    execute_job.apply_async(args=[str(job.pk)], queue=host.queue)
    return job


def test_a_version_built_on_host_a_runs_on_host_b(built_on_a) -> None:
    from tests.conftest import make_user

    version, module, host_a, host_b, build_log, _env = built_on_a
    assert "on host host-a" in build_log
    handle = version.build_handle
    assert handle["lock"].count("--hash=sha256:") == 1
    assert module.replace("_", "-") in handle["lock"]
    assert str(host_a.data_dir) in handle["env_dir"]  # where A put it; B never looks there
    assert not (host_b.data_dir / "envs").exists()

    subscriber = make_user()
    job = wait_final(run_on(host_b, version, subscriber), timeout=180)
    logs = log_text(job)
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_detail, logs, host_b.log()[-3000:])
    assert job.result == {"sum": 6, "module": "1.0"}
    assert job.worker.startswith("host-b:")
    assert "host host-b: environment and code materialised from the build's lock and the version's archive in" in logs
    assert logs.index("materialised") < logs.index("started on host host-b")
    assert (host_b.data_dir / "envs" / handle["env_key"] / ".planqk-ready").exists()
    assert (host_b.data_dir / "builds" / str(version.pk) / "src" / "program.py").exists()

    # The next job on host B finds both ready: nothing is materialised again.
    again = wait_final(run_on(host_b, version, subscriber), timeout=120)
    assert again.status == JobStatus.SUCCEEDED, (again.error_code, log_text(again))
    assert "materialised" not in log_text(again)


def test_two_jobs_at_once_on_host_b_materialise_once(built_on_a, start_host) -> None:
    from tests.conftest import make_user

    version, _module, _host_a, host_b, _log, env = built_on_a
    # A second worker of host B: same host name, same data directory, same queue.
    start_host(
        "host-b-2",
        queue=host_b.queue,
        env={**env, "PLANQK_HOST_NAME": "host-b", "PLANQK_DATA_DIR": str(host_b.data_dir)},
    )
    subscriber = make_user()
    jobs = [run_on(host_b, version, subscriber) for _ in range(2)]
    jobs = [wait_final(job, timeout=180) for job in jobs]
    logs = [log_text(job) for job in jobs]
    assert [job.status for job in jobs] == [JobStatus.SUCCEEDED] * 2, [(j.error_code, j.error_detail) for j in jobs]
    assert len({job.worker.split(":")[1] for job in jobs}) == 2  # two worker processes ran them
    assert sum("materialised from" in text for text in logs) == 1, logs
    assert len(list((host_b.data_dir / "envs").glob("*/.planqk-ready"))) == 1


@pytest.mark.parametrize(
    "edit",
    ["env-key-path", "version-id-path", "lock-url", "hash-mismatch"],
)
def test_an_edited_build_handle_fails_the_job_cleanly_and_unbilled(built_on_a, edit) -> None:
    from tests.conftest import make_user

    version, _module, _host_a, host_b, _log, _env = built_on_a
    handle = dict(version.build_handle)
    if edit == "env-key-path":
        handle["env_key"] = "../../../etc"
    elif edit == "version-id-path":
        handle["version_id"] = "../envs"
    elif edit == "lock-url":
        handle["lock"] += "evil @ file:///etc/passwd\n"
    else:
        pin = next(line for line in handle["lock"].splitlines() if "--hash=sha256:" in line)
        handle["lock"] = handle["lock"].replace(pin, pin.split("--hash=")[0] + "--hash=sha256:" + "0" * 64)
    ServiceVersion.objects.filter(pk=version.pk).update(build_handle=handle)
    version.refresh_from_db()

    job = wait_final(run_on(host_b, version, make_user()), timeout=180)
    assert job.status == JobStatus.FAILED
    assert job.error_code == "platform:build-unavailable", (job.error_code, job.error_detail)
    assert "could not prepare this version's build" in job.error_detail
    assert "/" not in job.error_detail.split("reference")[0]  # no server path for the subscriber
    assert "Traceback" not in log_text(job)
    assert not job.billable
    assert job.runtime_starts == 0
    assert usage_of(job) == [("FAILED", 0)]
    if edit in ("lock-url", "hash-mismatch"):
        assert not (host_b.data_dir / "envs" / handle["env_key"]).exists()  # nothing half-made to reuse
    if edit == "hash-mismatch":
        assert "DO NOT MATCH THE HASHES" in host_b.log()  # the operator's log says why


def test_a_job_beats_while_its_host_materialises_the_build(built_on_a) -> None:
    """Materialising can take minutes (a cold cache): the job's heartbeat goes on meanwhile, so
    the reaper does not fail it as ``platform:worker-lost`` (its execution has not started yet)."""
    import fcntl

    from tests.conftest import make_user
    from tests.jobs.conftest import wait_for

    version, _module, _host_a, host_b, _log, _env = built_on_a
    envs = host_b.data_dir / "envs"
    envs.mkdir(parents=True, exist_ok=True)
    # Held by this test: host B's job waits on it as on another job materialising the environment.
    with open(envs / f"{version.build_handle['env_key']}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        job = run_on(host_b, version, make_user())
        wait_for(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).exists(), timeout=60)
        first = Job.objects.get(pk=job.pk).heartbeat_at
        for _ in range(2):  # two beats later than the last one seen
            seen = Job.objects.get(pk=job.pk).heartbeat_at
            wait_for(
                lambda seen=seen: Job.objects.get(pk=job.pk).heartbeat_at > seen,
                timeout=10,
            )
        waiting = Job.objects.get(pk=job.pk)
        assert waiting.heartbeat_at > first
        assert waiting.runtime_handle is None  # still before its start
        fcntl.flock(fh, fcntl.LOCK_UN)
    job = wait_final(job, timeout=120)
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, log_text(job))
    assert "materialised from" in log_text(job)  # after the lock was free: nobody had made it
