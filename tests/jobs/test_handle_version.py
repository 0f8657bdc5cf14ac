"""A version's build handle names the version it was built for; one naming another version (a
row edited in the database, a handle copied between versions) must not run that version's code
under this one's name, on any runtime."""

from __future__ import annotations

import pytest

from jobs.models import Job, JobStatus
from services.models import BuildStatus, ServiceVersion
from tests.jobs.test_current_generation import build, private_media, user  # noqa: F401 (fixtures)
from tests.services.helpers import build_log, make_zip

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]


def _program(answer: str) -> bytes:
    return f"def run(values: list[float]) -> dict:\n    return {{'who': {answer!r}}}\n".encode()


def test_a_handle_naming_another_version_fails_the_job_and_runs_nothing(user):  # noqa: F811
    from jobs import engine
    from jobs.admission import execution_admit

    mine = build(user, "mine", make_zip({"src/program.py": _program("mine")}))
    theirs = build(user, "theirs", make_zip({"src/program.py": _program("theirs")}))
    assert mine.status == theirs.status == BuildStatus.READY, (build_log(mine), build_log(theirs))

    ServiceVersion.objects.filter(pk=mine.pk).update(build_handle=theirs.build_handle)
    mine.refresh_from_db()
    job = execution_admit(service_version=mine, owner=user, data={"values": [1]})
    engine.execute_job(str(job.id))
    job = Job.objects.get(pk=job.pk)
    assert job.status == JobStatus.FAILED
    assert job.error_code == "platform:build-unavailable"
    assert job.runtime_starts == 0  # theirs never ran as mine
    assert job.result is None
    assert not job.billable

    # The version's own handle runs as before.
    ok = execution_admit(service_version=theirs, owner=user, data={"values": [1]})
    engine.execute_job(str(ok.id))
    ok.refresh_from_db()
    assert (ok.status, ok.result) == (JobStatus.SUCCEEDED, {"who": "theirs"})
