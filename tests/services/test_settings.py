"""Upload and build limits are settings from the environment: bad values stop startup, set values are obeyed."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from planqk_portal.errors import ApplicationError
from planqk_samples import sample_zip
from services import builds, services, uploads
from services.models import BuildStatus, ServiceVersion

from .helpers import build_log, make_zip

ROOT = Path(__file__).resolve().parents[2]

#: Every limit that used to be a ``getattr`` default in the code, with a value different from its default.
LIMITS = {
    "PLANQK_BUILD_LOG_MAX_BYTES": 4096,
    "PLANQK_BUILD_REQUEUE_SECONDS": 42,
    "PLANQK_MAX_UPLOAD_MB": 7,
    "PLANQK_UPLOAD_MAX_ENTRIES": 11,
    "PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB": 13,
    "PLANQK_UPLOAD_MAX_RATIO": 17,
    "PLANQK_INPUT_MAX_BYTES": 2048,
    "PLANQK_DATAREF_MAX_BYTES": 8192,
    "PLANQK_JOB_LOG_MAX_BYTES": 3000,
    "PLANQK_JOB_OUTPUT_MAX_BYTES": 30000,
    "PLANQK_JOB_HEARTBEAT_STALE_SECONDS": 19,
    "PLANQK_JOB_PENDING_REQUEUE_SECONDS": 23,
    "PLANQK_JOB_PENDING_EXPIRE_SECONDS": 29,
    "PLANQK_JOB_MAX_INTERIM_RESULTS": 31,
}


def _start_django(env: dict[str, str], code: str = "") -> subprocess.CompletedProcess[str]:
    """Start Django in a fresh interpreter with ``env`` added, as the web server and the worker do."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("PLANQK_UPLOAD_") and k not in LIMITS}
    full.update(env, DJANGO_SETTINGS_MODULE="planqk_portal.settings")
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PLANQK_UPLOAD_MAX_RATIO", "abc", "PLANQK_UPLOAD_MAX_RATIO must be an integer, got 'abc'"),
        ("PLANQK_UPLOAD_MAX_RATIO", "-3", "PLANQK_UPLOAD_MAX_RATIO must be at least 1, got '-3'"),
        ("PLANQK_UPLOAD_MAX_ENTRIES", "0", "PLANQK_UPLOAD_MAX_ENTRIES must be at least 1, got '0'"),
        ("PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB", "1.5", "PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB must be an integer"),
        ("PLANQK_MAX_UPLOAD_MB", "-1", "PLANQK_MAX_UPLOAD_MB must be at least 1, got '-1'"),
        ("PLANQK_BUILD_LOG_MAX_BYTES", "2MB", "PLANQK_BUILD_LOG_MAX_BYTES must be an integer, got '2MB'"),
        ("PLANQK_BUILD_REQUEUE_SECONDS", "-300", "PLANQK_BUILD_REQUEUE_SECONDS must be at least 1"),
        ("PLANQK_INPUT_MAX_BYTES", "-1", "PLANQK_INPUT_MAX_BYTES must be at least 1"),
        ("PLANQK_DATAREF_MAX_BYTES", "lots", "PLANQK_DATAREF_MAX_BYTES must be an integer"),
        ("PLANQK_JOB_LOG_MAX_BYTES", "-1", "PLANQK_JOB_LOG_MAX_BYTES must be at least 1"),
        ("PLANQK_JOB_OUTPUT_MAX_BYTES", "0", "PLANQK_JOB_OUTPUT_MAX_BYTES must be at least 1"),
        ("PLANQK_JOB_HEARTBEAT_STALE_SECONDS", "0", "PLANQK_JOB_HEARTBEAT_STALE_SECONDS must be at least 1"),
        ("PLANQK_JOB_PENDING_REQUEUE_SECONDS", "x", "PLANQK_JOB_PENDING_REQUEUE_SECONDS must be an integer"),
        ("PLANQK_JOB_PENDING_EXPIRE_SECONDS", "-1", "PLANQK_JOB_PENDING_EXPIRE_SECONDS must be at least 1"),
        ("PLANQK_JOB_MAX_INTERIM_RESULTS", "-1", "PLANQK_JOB_MAX_INTERIM_RESULTS must be at least 1"),
        ("PLANQK_BROKER_POLL_SECONDS", "fast", "PLANQK_BROKER_POLL_SECONDS must be a number, got 'fast'"),
        ("PLANQK_BROKER_POLL_SECONDS", "0", "PLANQK_BROKER_POLL_SECONDS must be between 0.005 and 5.0"),
        ("PLANQK_BROKER_POLL_SECONDS", "nan", "PLANQK_BROKER_POLL_SECONDS must be between 0.005 and 5.0"),
    ],
)
def test_a_bad_limit_in_the_environment_stops_startup_naming_the_variable(name, value, message):
    started = _start_django({name: value})
    assert started.returncode != 0
    last_line = started.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: "), started.stderr[-2000:]
    assert message in last_line


def test_limits_from_the_environment_become_settings():
    code = "from django.conf import settings; import json; print(json.dumps({n: getattr(settings, n) for n in %r}))"
    started = _start_django({name: str(value) for name, value in LIMITS.items()}, code % list(LIMITS))
    assert started.returncode == 0, started.stderr[-2000:]
    assert json.loads(started.stdout.strip().splitlines()[-1]) == LIMITS


def test_unset_limits_have_their_documented_defaults():
    code = "from django.conf import settings; import json; print(json.dumps({n: getattr(settings, n) for n in %r}))"
    started = _start_django({}, code % list(LIMITS))
    assert started.returncode == 0, started.stderr[-2000:]
    values = json.loads(started.stdout.strip().splitlines()[-1])
    assert values["PLANQK_BUILD_LOG_MAX_BYTES"] == 2 * 1024 * 1024
    assert values["PLANQK_BUILD_REQUEUE_SECONDS"] == 300
    assert values["PLANQK_MAX_UPLOAD_MB"] == 50
    assert values["PLANQK_UPLOAD_MAX_ENTRIES"] == 5000
    assert values["PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB"] == 500
    assert values["PLANQK_UPLOAD_MAX_RATIO"] == 100
    readme = (ROOT / "README.md").read_text()
    for name in LIMITS:
        assert f"| `{name}`" in readme or f"/ `{name}`" in readme, f"{name} is missing from the README's settings table"


# --- uploads ----------------------------------------------------------------------------------


def _archive_with_entries(count: int) -> bytes:
    """A valid service archive of exactly ``count`` entries."""
    base = make_zip()
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        have = len(zf.infolist())
    return make_zip({f"src/libs/m{i}.py": b"" for i in range(count - have)})


@pytest.mark.django_db
@pytest.mark.usefixtures("private_media")
def test_upload_entry_cap_from_settings_refuses_one_entry_too_many(settings, user):
    settings.PLANQK_UPLOAD_MAX_ENTRIES = 12
    uploads.inspect_archive(io.BytesIO(_archive_with_entries(12)))  # exactly at the cap: accepted
    with pytest.raises(ApplicationError) as exc:
        services.service_create(owner=user, name="crowded", archive=_archive_with_entries(13))
    assert exc.value.code == "upload:too-many-entries"
    assert "13 entries; at most 12" in exc.value.message


def test_upload_ratio_cap_from_settings_is_obeyed(settings):
    data = make_zip({"src/data.txt": b"0123456789abcdef\n" * (2 * 1024 * 1024 // 17)})  # 2 MB of one line
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("src/data.txt")
        ratio = info.file_size / info.compress_size
    settings.PLANQK_UPLOAD_MAX_RATIO = int(ratio) + 1
    uploads.inspect_archive(io.BytesIO(data))
    settings.PLANQK_UPLOAD_MAX_RATIO = max(1, int(ratio) // 2)
    with pytest.raises(ApplicationError) as exc:
        uploads.inspect_archive(io.BytesIO(data))
    assert exc.value.code == "upload:zip-bomb"
    assert f"more than {settings.PLANQK_UPLOAD_MAX_RATIO} times" in exc.value.message


def test_uncompressed_size_cap_from_settings_is_in_megabytes(settings):
    data = make_zip({"src/data.txt": os.urandom(700 * 1024).hex().encode()})  # 1.4 MB unpacked
    settings.PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB = 2
    uploads.inspect_archive(io.BytesIO(data))
    settings.PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB = 1
    with pytest.raises(ApplicationError) as exc:
        uploads.inspect_archive(io.BytesIO(data))
    assert exc.value.code == "upload:too-large-uncompressed"
    assert "more than 1 MB" in exc.value.message


# --- builds -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("private_media")
def test_build_log_cap_from_settings_cuts_a_real_build_log(settings, user):
    settings.PLANQK_BUILD_LOG_MAX_BYTES = 120
    service = services.service_create(owner=user, name="chatty", archive=sample_zip("sum"))
    version = builds.service_version_build(version_id=service.versions.get().pk)
    assert version.status == BuildStatus.READY  # a cut log does not fail the build
    log = build_log(version)
    assert "[output cut at 120 bytes]" in log
    assert "is READY" not in log  # the lines past the cap were not stored
    assert len(log.encode()) <= 120 + len("\n[output cut at 120 bytes]\n")


@pytest.mark.django_db
@pytest.mark.usefixtures("private_media")
def test_build_requeue_period_from_settings_decides_which_pending_builds_are_enqueued_again(settings, user):
    service = services.service_create(owner=user, name="waiting", archive=sample_zip("sum"))
    version = service.versions.get()
    ServiceVersion.objects.filter(pk=version.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    settings.PLANQK_BUILD_REQUEUE_SECONDS = 3600  # 10 minutes PENDING is not long enough yet
    assert builds.service_builds_requeue() == 0
    settings.PLANQK_BUILD_REQUEUE_SECONDS = 60
    assert builds.service_builds_requeue() == 1
    assert builds.service_builds_requeue() == 0  # at most once per period


def test_the_filesystem_brokers_polling_interval_comes_from_the_setting():
    code = "from planqk_portal.celery import app; print(app.conf.broker_transport_options['polling_interval'])"
    embedded = {"CELERY_BROKER_URL": "filesystem://"}
    default = _start_django(embedded, code)
    assert default.returncode == 0, default.stderr[-2000:]
    assert float(default.stdout.strip().splitlines()[-1]) == 0.02
    slower = _start_django({**embedded, "PLANQK_BROKER_POLL_SECONDS": "0.5"}, code)
    assert slower.returncode == 0, slower.stderr[-2000:]
    assert float(slower.stdout.strip().splitlines()[-1]) == 0.5
