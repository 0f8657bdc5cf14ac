"""Result files on the job page: listed, downloaded with the job page's permission check, saved
into a data pool the user may write. Another user sees none of it, by any id."""

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from datapools.models import DataFile
from datapools.services import datapool_create, datapool_share
from jobs.admission import execution_admit
from jobs.models import Job, JobResultFile, JobStatus
from tests.applications.conftest import make_service
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

CSV = b"value\n1\n2\n"


def finished_job_with_files(owner, service_name: str = "files") -> tuple[Job, JobResultFile, JobResultFile]:
    target = make_service(owner, name=service_name, sample=None)
    job = execution_admit(service_version=target.version, owner=owner, data={})
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, started_at=now, ended_at=now, result={"ok": 1})
    files = []
    made = (("values.csv", CSV, "text/csv"), ("page.html", b"<script>x</script>", "text/html"))
    for name, content, media_type in made:
        row = JobResultFile(job=job, name=name, size_bytes=len(content), media_type=media_type)
        row.file.save(name, ContentFile(content), save=False)
        row.save()
        files.append(row)
    return Job.objects.get(pk=job.pk), files[0], files[1]


def logged_in(client, user):
    assert client.login(email=user.email, password=PASSWORD)
    return client


def test_the_job_page_lists_result_files_with_downloads_and_pools(client, user):
    job, csv, html = finished_job_with_files(user)
    pool = datapool_create(user=user, name="my results")
    page = logged_in(client, user).get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f'href="/jobs/{job.pk}/files/{csv.pk}"' in text
    assert "values.csv" in text
    assert "page.html" in text
    assert f'value="{pool.pk}"' in text
    assert "Save into data pool" in text

    download = client.get(f"/jobs/{job.pk}/files/{csv.pk}")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == CSV
    assert download["Content-Type"] == "text/csv"
    assert download["Content-Disposition"] == 'attachment; filename="values.csv"'
    dangerous = client.get(f"/jobs/{job.pk}/files/{html.pk}")
    assert dangerous["Content-Disposition"].startswith("attachment")
    assert "sandbox" in dangerous["Content-Security-Policy"]
    assert dangerous["X-Content-Type-Options"] == "nosniff"


def test_a_running_job_shows_no_files_yet(client, user):
    job, _, _ = finished_job_with_files(user)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, ended_at=None)
    assert "values.csv" not in logged_in(client, user).get(f"/jobs/{job.pk}/").content.decode()


def test_saving_a_result_file_into_a_pool_and_into_a_new_one(client, user):
    job, csv, _ = finished_job_with_files(user)
    pool = datapool_create(user=user, name="my results")
    logged_in(client, user)
    response = client.post(f"/jobs/{job.pk}/files/{csv.pk}/save", {"pool": str(pool.pk)})
    assert response.status_code == 302
    stored = DataFile.objects.get(pool=pool)
    assert stored.name == "values.csv"
    with stored.file.open("rb") as handle:
        assert handle.read() == CSV
    assert "Saved" in client.get(f"/jobs/{job.pk}/").content.decode()

    client.post(f"/jobs/{job.pk}/files/{csv.pk}/save", {"pool": ""})
    new = DataFile.objects.exclude(pool=pool).get()
    assert new.pool.owner == user
    assert new.pool.name.startswith("files job ")


def test_a_pool_the_user_may_only_read_or_not_see_gets_nothing(client, user):
    job, csv, _ = finished_job_with_files(user)
    owner = make_user("pool-owner@example.com")
    readable = datapool_create(user=owner, name="read only")
    datapool_share(user=owner, pool=readable, email=user.email, permission="READ")
    hidden = datapool_create(user=owner, name="hidden")
    logged_in(client, user)
    for pool in (readable, hidden):
        response = client.post(f"/jobs/{job.pk}/files/{csv.pk}/save", {"pool": str(pool.pk)}, follow=True)
        assert response.status_code == 200
    assert client.post(f"/jobs/{job.pk}/files/{csv.pk}/save", {"pool": "not-a-uuid"}).status_code == 302
    assert not DataFile.objects.exists()


def test_another_user_reaches_no_file_by_any_id(client, user):
    job, csv, _ = finished_job_with_files(user)
    intruder = make_user("intruder@example.com")
    own_job, own_csv, _ = finished_job_with_files(intruder, service_name="theirs")
    logged_in(client, intruder)
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/jobs/{job.pk}/files/{csv.pk}").status_code == 404
    # Their own job's id with the victim's file id: still no file.
    response = client.get(f"/jobs/{own_job.pk}/files/{csv.pk}")
    assert response.status_code == 404
    assert CSV not in response.content
    assert client.post(f"/jobs/{job.pk}/files/{csv.pk}/save", {"pool": ""}).status_code == 404
    assert client.post(f"/jobs/{own_job.pk}/files/{csv.pk}/save", {"pool": ""}).status_code == 404
    assert not DataFile.objects.exists()
    # Their own file works, so the 404s above are about the rights, not the route.
    assert client.get(f"/jobs/{own_job.pk}/files/{own_csv.pk}").status_code == 200


def test_download_needs_a_login(client, user):
    job, csv, _ = finished_job_with_files(user)
    response = client.get(f"/jobs/{job.pk}/files/{csv.pk}")
    assert response.status_code == 302
    assert "/login" in response["Location"] or "accounts" in response["Location"]


def test_a_current_jobs_page_shows_its_request_and_tags(client, user):
    from services.models import Generation

    target = make_service(user, name="hub", sample=None)
    target.version.generation = Generation.CURRENT
    target.version.save(update_fields=["generation"])
    job = execution_admit(service_version=target.version, owner=user, data={"values": [4, 5]}, tags=["night<ly>"])
    text = logged_in(client, user).get(f"/jobs/{job.pk}/").content.decode()
    assert "Request" in text
    assert "Job parameters" not in text
    assert "night&lt;ly&gt;" in text
    assert "night<ly>" not in text
