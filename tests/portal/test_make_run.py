"""`make run` as an attacker meets it: the production server, DEBUG off, keys of its own, no
/media/, styled error pages, and 50 simultaneous submissions all answered."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest
import requests

from tests.portal.make_run import ROOT, MakeRunPortal, start_make_run

ARCHIVE_BYTES = b"PK\x03\x04 secret provider source code def run(): return 'victim-42'"


@pytest.fixture(scope="module")
def make_run() -> Iterator[MakeRunPortal]:
    portal = start_make_run()
    yield portal
    portal.stop()
    shutil.rmtree(portal.data_dir, ignore_errors=True)


def test_serves_with_granian_and_debug_off(make_run):
    assert "granian" in make_run.log() or "[run] started web" in make_run.log()
    web_pid = int(make_run.log().split("[run] started web (pid ", 1)[1].split(")", 1)[0])
    cmdline = Path(f"/proc/{web_pid}/cmdline").read_bytes().replace(b"\0", b" ")
    assert b"granian" in cmdline
    assert b"runserver" not in cmdline
    settings = json.loads(
        make_run.manage(
            code="import json; from django.conf import settings as s; print(json.dumps({'debug': s.DEBUG}))"
        )
    )
    assert settings == {"debug": False}


def test_hostile_host_header_gets_no_traceback(make_run):
    for path in ("/", "/api/v1/jobs/", "/gateway/token", "/jobs/new/?from=not-a-uuid"):
        response = requests.get(f"{make_run.url}{path}", headers={"Host": "evil.example.com"}, timeout=10)
        assert response.status_code == 400, path
        assert "Traceback" not in response.text
        assert "DisallowedHost" not in response.text
        assert "settings.py" not in response.text


def test_unknown_url_is_the_styled_404(make_run):
    response = requests.get(f"{make_run.url}/no/such/page/", timeout=10)
    assert response.status_code == 404
    assert 'class="topbar"' in response.text
    assert "Not found" in response.text
    assert "URLconf" not in response.text
    assert "DEBUG = True" not in response.text


def test_favicon_and_collected_static_files(make_run):
    favicon = requests.get(f"{make_run.url}/favicon.ico", timeout=10)
    assert favicon.status_code == 200
    assert favicon.content[:4] == b"\x00\x00\x01\x00"
    page = requests.get(f"{make_run.url}/", timeout=10).text
    assert 'rel="icon"' in page
    css = page.split('href="/static/css/app.', 1)[1].split('"', 1)[0]
    assert css.count(".") == 1, "static files are not the hashed, collected ones"
    assert requests.get(f"{make_run.url}/static/css/app.{css}", timeout=10).status_code == 200


def test_keys_are_made_per_install_and_private(make_run):
    secret_file = make_run.data_dir / "secret-key"
    field_file = make_run.data_dir / "field-encryption-key"
    for path in (secret_file, field_file):
        assert path.stat().st_mode & 0o777 == 0o600, path
    keys = json.loads(
        make_run.manage(
            code="import json; from django.conf import settings as s; "
            "print(json.dumps([s.SECRET_KEY, s.PLANQK_FIELD_ENCRYPTION_KEY]))"
        )
    )
    assert keys == [secret_file.read_text().strip(), field_file.read_text().strip()]
    assert not any("insecure" in key for key in keys)
    assert len(keys[0]) >= 50


def test_check_deploy_is_clean_for_the_make_run_settings(make_run):
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=make_run.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_media_files_are_not_served(make_run):
    make_run.manage(
        code="from django.core.files.base import ContentFile; from django.core.files.storage import default_storage; "
        f"default_storage.save('service-archives/victim/1.0.0.zip', ContentFile({ARCHIVE_BYTES!r}))"
    )
    assert (make_run.data_dir / "media" / "service-archives" / "victim" / "1.0.0.zip").exists()
    for path in ("/media/service-archives/victim/1.0.0.zip", "/media/service-archives/victim/", "/media/"):
        response = requests.get(f"{make_run.url}{path}", timeout=10)
        assert response.status_code == 404, path
        assert b"victim-42" not in response.content


def test_fifty_simultaneous_submissions_all_get_an_answer(make_run):
    """The owner quota answers 429 to most of them: that is an answer. No connection may be reset."""
    token = make_run.manage(
        code="from accounts.models import User; from accounts.services import personal_access_token_create as c; "
        "from services.models import Service, ServiceVersion, BuildStatus; "
        "u = User.objects.create_user(email='load@example.com', password='x-load-password-42'); "
        "s = Service.objects.create(owner=u, name='load', title='Load'); "
        "v = ServiceVersion.objects.create(service=s, version='1.0.0', created_by=u, status=BuildStatus.READY); "
        "print(c(user=u, name='load', scopes=['api'], expires_days=1).secret)"
    ).strip()
    body = json.dumps({"service_name": "load", "data": {"values": [1, 2]}, "params": {}}).encode()
    attempts = 50
    barrier = Barrier(attempts)

    def submit(_: int) -> str:
        barrier.wait(timeout=30)
        try:
            response = requests.post(
                f"{make_run.url}/api/v1/jobs/",
                data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=60,
            )
            return f"HTTP/1.1 {response.status_code}"
        except requests.RequestException as exc:
            return f"connection error: {exc!r}"

    with ThreadPoolExecutor(attempts) as pool:
        answers = list(pool.map(submit, range(attempts)))
    errors = [answer for answer in answers if not answer.startswith("HTTP/1.1 ")]
    assert errors == [], f"{len(errors)} of {attempts} got no HTTP answer: {errors[:3]}"
    statuses = sorted(int(answer.split()[1]) for answer in answers)
    assert set(statuses) <= {201, 429}, statuses
    assert statuses.count(201) >= 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_browser_logs_in_over_loopback_http(make_run, browser_page, host):
    """Session and CSRF cookies are Secure (check --deploy); browsers keep them for loopback origins."""
    page = browser_page
    url = make_run.url.replace("127.0.0.1", host)
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=login]", "demo@example.com")
    page.fill("input[name=password]", "quantum-demo-2026")
    page.click("form button[type=submit]")
    page.wait_for_selector("[data-testid=logout]")
    page.goto(f"{url}/jobs/new/?from=not-a-uuid")
    assert page.locator("h1").first.inner_text() != "Server error"
