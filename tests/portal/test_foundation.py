"""The foundation: production settings, Celery reliability settings, a real worker, password reset,
and the template downloads."""

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail

from planqk_portal.celery import app as celery_app
from tests.conftest import make_user
from tests.runtime.test_template import LAYOUT

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
            "DJANGO_ALLOWED_HOSTS": "platform.example.com",
            "PLANQK_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_a_secret_key_an_install_makes_its_own_once(tmp_path):
    """Not the repository's development key: one made for this data directory, 0600, kept."""
    code = "from django.conf import settings as s; print(s.SECRET_KEY); print(s.PLANQK_FIELD_ENCRYPTION_KEY)"
    first = _manage("shell", "-v", "0", "-c", code, env={"PLANQK_DATA_DIR": str(tmp_path)})
    assert first.returncode == 0, first.stderr
    again = _manage("shell", "-v", "0", "-c", code, env={"DJANGO_DEBUG": "true", "PLANQK_DATA_DIR": str(tmp_path)})
    assert again.stdout == first.stdout
    secret_key, field_key = first.stdout.split()
    assert "insecure" not in secret_key
    assert len(secret_key) >= 50
    assert (tmp_path / "secret-key").read_text().strip() == secret_key
    assert (tmp_path / "field-encryption-key").read_text().strip() == field_key
    assert (tmp_path / "secret-key").stat().st_mode & 0o777 == 0o600
    other = _manage("shell", "-v", "0", "-c", code, env={"PLANQK_DATA_DIR": str(tmp_path / "other")})
    assert set(other.stdout.split()).isdisjoint(first.stdout.split())


def test_celery_is_configured_for_reliability():
    conf = celery_app.conf
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_time_limit > settings.PLANQK_JOB_MAX_TIMEOUT
    if not settings.CELERY_BROKER_URL.startswith("filesystem"):
        assert conf.broker_transport_options["visibility_timeout"] > settings.PLANQK_JOB_MAX_TIMEOUT
    assert conf.beat_schedule["reaper"]["task"] == "planqk_portal.tasks.reap"


def test_reaper_runs_every_check_even_when_one_fails():
    from planqk_portal import reaper

    calls = []

    def broken():
        raise RuntimeError("boom")

    def fine():
        calls.append("fine")
        return 3

    before = reaper.registered()
    try:
        reaper.register(broken)
        reaper.register(fine)
        outcome = reaper.run_all()
    finally:
        reaper._checks.clear()
        reaper._checks.update(before)
    assert calls == ["fine"]
    assert any(v.startswith("failed: boom") for v in outcome.values())
    assert "ok 3" in outcome.values()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_reaper_task(celery_worker):
    from planqk_portal.tasks import reap

    reap.delay()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "planqk_portal.tasks.reap" not in celery_worker.log():
        time.sleep(0.2)
    while time.monotonic() < deadline and not re.search(
        r"Task planqk_portal\.tasks\.reap\[.*\] succeeded", celery_worker.log()
    ):
        time.sleep(0.2)
    assert re.search(r"Task planqk_portal\.tasks\.reap\[.*\] succeeded", celery_worker.log()), celery_worker.log()


@pytest.mark.django_db
def test_password_reset_by_mail(client):
    user = make_user("forgetful@example.com")
    response = client.post("/accounts/password/reset/", {"email": "forgetful@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^\s]+/accounts/password/reset/key/[^\s]+", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    new_password = "a-brand-new-passphrase-77"
    done = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else path,
        {"password1": new_password, "password2": new_password},
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)


@pytest.mark.django_db
def test_template_zip_download_unpacks_and_runs(client, tmp_path):
    response = client.get("/templates/template.zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        assert LAYOUT - {"README.md"} <= names  # the layout of ARCHITECTURE section 2
        archive.extractall(tmp_path)
    result = subprocess.run([sys.executable, "-m", "src"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["result"] == {"sum": 420.69}


@pytest.mark.django_db
def test_template_tar_gz_download_matches_the_zip(client):
    zipped = client.get("/templates/template.zip").content
    tarred = client.get("/templates/template.tar.gz").content
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        zip_files = {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}
    with tarfile.open(fileobj=io.BytesIO(tarred), mode="r:gz") as archive:
        tar_files = {
            m.name.removeprefix("./"): archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()
        }
    assert zip_files == tar_files
