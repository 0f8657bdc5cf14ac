"""A job whose stored secrets cannot be opened (the install's key changed, the row was altered)
must not run without them: the program would get no secret, and its log no redaction."""

from __future__ import annotations

import pytest

from jobs.models import Job, JobStatus
from payments.models import UsageRecord
from services.models import BuildStatus, Generation
from tests.jobs.test_current_generation import build, private_media, user  # noqa: F401 (fixtures)
from tests.services.helpers import build_log, make_zip

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]

PROGRAM = b"""\
import os


def run(values: list[float]) -> dict:
    return {"total": sum(values), "had_secret": "SECRET_API_TOKEN" in os.environ}
"""


def test_unreadable_secrets_fail_the_job_before_it_starts(user):  # noqa: F811
    from jobs import engine
    from jobs.admission import execution_admit

    version = build(user, "typed-sum", make_zip({"src/program.py": PROGRAM}))
    assert version.status == BuildStatus.READY, build_log(version)
    assert version.generation == Generation.CURRENT

    readable = execution_admit(service_version=version, owner=user, data={"values": [1, 2]}, secrets={"api_token": "t"})
    engine.execute_job(str(readable.id))
    readable.refresh_from_db()
    assert readable.status == JobStatus.SUCCEEDED, (readable.error_code, readable.error_detail)
    assert readable.result == {"total": 3, "had_secret": True}

    job = execution_admit(service_version=version, owner=user, data={"values": [1, 2]}, secrets={"api_token": "t"})
    Job.objects.filter(pk=job.pk).update(secrets_ciphertext=b"gAAAAA-not-a-token-of-this-install")
    engine.execute_job(str(job.id))
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_code == "platform:secrets-unreadable"
    assert job.runtime_starts == 0  # the program never ran without its secrets
    assert job.result is None
    assert "reference" in job.error_detail
    assert "/" not in job.error_detail
    assert job.secrets_ciphertext is None
    assert not job.billable
    assert all(record.amount_cents == 0 for record in UsageRecord.objects.filter(job=job))
