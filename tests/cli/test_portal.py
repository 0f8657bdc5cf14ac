"""The CLI against a running portal (live_server) and a real Celery worker: the documentation's TL;DR."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import zipfile
from datetime import timedelta

import pytest

from planqk_cli.errors import ExitCode
from tests.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def portal_cli(cli, live_server):
    cli.endpoint = live_server.url
    return cli


def issue_token(user, **kwargs):
    from accounts.services import personal_access_token_create

    return personal_access_token_create(user=user, name="cli", scopes=["api"], expires_days=1, **kwargs)


# --- login / logout ---------------------------------------------------------------------------------


def test_login_checks_the_token_and_stores_it_for_the_owner_only(portal_cli, live_server, user):
    token = token_for(user)
    result = portal_cli("login", "-t", token)
    assert result.returncode == 0, str(result)
    assert f"Logged in to {live_server.url} as alice@example.com" in result.stderr
    config = portal_cli.config_file
    assert json.loads(config.read_text()) == {"endpoint": live_server.url, "token": token}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert token not in result.output  # never echoed

    assert portal_cli("logout").returncode == 0
    assert not config.exists()
    assert portal_cli("services").returncode == ExitCode.NOT_LOGGED_IN


def test_login_respects_xdg_config_home(portal_cli, user, tmp_path):
    xdg = tmp_path / "xdg"
    result = portal_cli("login", "-t", token_for(user), XDG_CONFIG_HOME=str(xdg))
    assert result.returncode == 0, str(result)
    assert stat.S_IMODE((xdg / "planqk" / "config.json").stat().st_mode) == 0o600
    assert not portal_cli.config_file.exists()
    assert portal_cli("services", XDG_CONFIG_HOME=str(xdg)).returncode == 0


def test_login_with_a_wrong_token_is_rejected_and_nothing_is_stored(portal_cli, user):
    result = portal_cli("login", "-t", "pqk_not-a-real-token")
    assert result.returncode == ExitCode.AUTH_REJECTED, str(result)
    assert "the portal rejected your token" in result.stderr
    assert not portal_cli.config_file.exists()


def test_revoked_token_is_its_own_error(portal_cli, user):
    from accounts.services import personal_access_token_revoke

    issued = issue_token(user)
    assert portal_cli("login", "-t", issued.secret).returncode == 0
    personal_access_token_revoke(user=user, token_id=issued.token.pk)
    result = portal_cli("services")
    assert result.returncode == ExitCode.AUTH_REJECTED, str(result)
    assert "revoked" in result.stderr
    assert "planqk login -t TOKEN" in result.stderr


def test_expired_token_is_rejected(portal_cli, user):
    from django.utils import timezone

    from accounts.models import PersonalAccessToken

    issued = issue_token(user)
    assert portal_cli("login", "-t", issued.secret).returncode == 0
    PersonalAccessToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert portal_cli("jobs").returncode == ExitCode.AUTH_REJECTED


def test_an_endpoint_that_is_not_a_portal_is_a_bad_answer(portal_cli, live_server, user):
    result = portal_cli("login", "-t", token_for(user), "--endpoint", f"{live_server.url}/nowhere")
    assert result.returncode == ExitCode.BAD_ANSWER, str(result)
    assert "has no PlanQK API" in result.stderr


def test_empty_lists(portal_cli, user):
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    services = portal_cli("services")
    assert services.returncode == 0
    assert "no services yet" in services.stderr
    assert portal_cli("services", "--json").json() == []
    assert portal_cli("jobs", "--json").json() == []


# --- up / run ---------------------------------------------------------------------------------------


def test_the_documentations_tldr_with_the_cli(portal_cli, live_server, celery_worker, user):
    # 1. The template, here from `planqk init` instead of the download.
    assert portal_cli("init", "planqk_service").returncode == 0
    folder = portal_cli.cwd / "planqk_service"
    # 4. Test it locally.
    local = subprocess.run([sys.executable, "-m", "src"], cwd=folder, capture_output=True, text=True, check=True)
    assert json.loads(local.stdout.strip().splitlines()[-1]) == {"result": {"sum": 420.69}, "metadata": None}
    # 3.1 The CLI: log in with a personal access token, then `planqk up`.
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    up = portal_cli("up", "--silent", "-n", "sum-tldr", cwd=folder)
    assert up.returncode == 0, str(up)
    assert "READY" in up.stderr
    assert up.stdout.strip() == f"{live_server.url}/gateway/{user.uuid}/sum-tldr/1.0.0/"
    project = json.loads((folder / "planqk.json").read_text())
    assert project["name"] == "sum-tldr"

    from services.models import Service

    service = Service.objects.get(owner=user, name="sum-tldr")
    assert project["serviceId"] == str(service.pk)
    assert service.quantum_backend == "NONE"

    # The service runs: `planqk run` in the folder uses planqk.json and input/*.json.
    run = portal_cli("run", cwd=folder)
    assert run.returncode == 0, str(run)
    assert json.loads(run.stdout) == {"sum": 420.69}

    services = portal_cli("services")
    assert services.returncode == 0, str(services)
    rows = [line.split() for line in services.stdout.splitlines()]
    assert rows[0][:3] == ["NAME", "VERSION", "BUILD"]
    assert rows[1][:3] == ["sum-tldr", "1.0.0", "READY"], str(services)
    jobs = portal_cli("jobs", "--service", "sum-tldr")
    assert jobs.returncode == 0, str(jobs)
    assert "SUCCEEDED" in jobs.stdout, str(jobs)


def test_up_again_builds_a_new_version_and_run_reports_failures(portal_cli, celery_worker, user):
    assert portal_cli("init", "summer").returncode == 0
    folder = portal_cli.cwd / "summer"
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    refused = portal_cli("up", "--silent", "-q", "dwave", cwd=folder)
    assert refused.returncode == ExitCode.REFUSED, str(refused)
    assert "needs your D-Wave token" in refused.stderr  # the portal's own message

    from accounts.services import provider_token_set

    provider_token_set(user=user, provider="DWAVE", value="dwave-test-token")
    first = portal_cli("up", "--silent", "-d", "Sums numbers", "-q", "dwave", cwd=folder)
    assert first.returncode == 0, str(first)
    service_id = json.loads((folder / "planqk.json").read_text())["serviceId"]

    program = folder / "src" / "program.py"
    # Version 2 marks its results and fails on one input the spec accepts (the spec's checks at
    # admission refuse what the template's own check would).
    version_2 = 'if total == 13:\n        return ErrorResponse(code="UNLUCKY", detail="13 is never summed")\n'
    version_2 += '    return ResultResponse(result={"sum": total, "v": 2})'
    text = program.read_text()
    assert 'return ResultResponse(result={"sum": total})' in text
    program.write_text(text.replace('return ResultResponse(result={"sum": total})', version_2))
    second = portal_cli("up", "--silent", cwd=folder)
    assert second.returncode == 0, str(second)
    assert "new version" in second.stderr

    from services.models import Service

    service = Service.objects.get(pk=service_id)
    assert service.name == "summer"  # named after the folder
    assert service.description == "Sums numbers"
    assert service.quantum_backend == "DWAVE"
    assert service.versions.count() == 2

    by_name = portal_cli("run", "summer", "-d", '{"values": [1, 2.5]}', "-p", '{"round_off": true}')
    assert by_name.returncode == 0, str(by_name)
    assert json.loads(by_name.stdout) == {"sum": 3, "v": 2}

    refused = portal_cli("run", service_id, "-d", '{"values": "many"}')
    assert refused.returncode == ExitCode.REFUSED, str(refused)
    assert "does not match the service's API spec: data.values" in refused.stderr  # the portal's message

    failed = portal_cli("run", service_id, "-d", '{"values": [6, 7]}')
    assert failed.returncode == ExitCode.JOB_FAILED, str(failed)
    assert "FAILED: UNLUCKY: 13 is never summed" in failed.stderr

    detached = portal_cli("run", "--detached", cwd=folder)
    assert detached.returncode == 0, str(detached)
    from jobs.models import Job

    assert Job.objects.filter(pk=detached.stdout.strip(), service_version__service_id=service_id).exists()


def test_a_failed_build_prints_its_log_and_exits_8(portal_cli, celery_worker, user):
    assert portal_cli("init", "broken").returncode == 0
    folder = portal_cli.cwd / "broken"
    # The build's smoke test runs the spec's example, which this program refuses: no network
    # needed to fail. (A malformed requirements.txt never gets this far: the upload is refused, exit 7.)
    (folder / "src" / "program.py").write_text(
        "from .libs.return_objects import ErrorResponse\n\n\n"
        "def run(data=None, params=None):\n"
        "    return ErrorResponse(code='BROKEN_FOR_TESTS', detail='this version always fails')\n"
    )
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    result = portal_cli("up", "--silent", cwd=folder)
    assert result.returncode == ExitCode.BUILD_FAILED, str(result)
    assert "FAILED" in result.stderr
    assert "BROKEN_FOR_TESTS" in result.stderr  # from the build log
    assert result.stdout == ""


def test_a_zip_the_portal_refuses_shows_its_message(portal_cli, user):
    archive = portal_cli.cwd / "user_code.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("README.md", "no code here")
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    result = portal_cli("up", "--file", "user_code.zip", "--silent", "-n", "refused")
    assert result.returncode == ExitCode.REFUSED, str(result)
    assert "the portal refused the request" in result.stderr
    assert "program.py" in result.stderr
    assert not (portal_cli.cwd / "planqk.json").exists()


def test_creating_a_service_without_a_card_shows_the_portals_message(portal_cli, other_user):
    assert portal_cli("init", "nocard").returncode == 0
    assert portal_cli("login", "-t", token_for(other_user)).returncode == 0
    result = portal_cli("up", "--silent", cwd=portal_cli.cwd / "nocard")
    assert result.returncode == ExitCode.REFUSED, str(result)
    assert "payments:card-required" in result.stderr


def test_run_of_an_unknown_service(portal_cli, user):
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    result = portal_cli("run", "no-such-service", "-d", "{}")
    assert result.returncode == ExitCode.NOT_FOUND, str(result)


def test_planqk_json_naming_a_deleted_service(portal_cli, user, tmp_path):
    assert portal_cli("init", "orphan").returncode == 0
    folder = portal_cli.cwd / "orphan"
    (folder / "planqk.json").write_text(json.dumps({"serviceId": "6f1c0d47-8a4e-4a43-9a43-0c8e0f3d1e2a"}))
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    result = portal_cli("up", "--silent", cwd=folder)
    assert result.returncode == ExitCode.NOT_FOUND, str(result)
    assert "Delete planqk.json" in result.stderr


def test_up_on_a_terminal_prompts_for_what_is_missing_and_shows_a_live_progress_line(portal_cli, celery_worker, user):
    """On a terminal: questions with defaults (a wrong choice is asked again), then a spinner line."""
    import os
    import pty
    import threading

    assert portal_cli("init", "asked").returncode == 0
    folder = portal_cli.cwd / "asked"
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "planqk_cli", "up"],
        cwd=folder,
        env=portal_cli.env(TERM="xterm"),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the terminal closed: the command ended
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Name: the default (the folder's name); a description; a wrong backend, then a right one;
    # the pricing plans: the default (free).
    os.write(master, b"\nSums numbers on a terminal\nrigetti\nnone\n\n")
    assert process.wait(timeout=300) == 0
    reader.join(timeout=30)
    os.close(master)
    output = b"".join(chunks).decode(errors="replace")
    assert "Name of the service [asked]:" in output
    assert "Quantum backend (NONE/IBM/DWAVE) [NONE]:" in output
    assert "Please answer one of NONE, IBM, DWAVE." in output
    assert "Pricing plans (free, per-execution:CENTS, monthly:CENTS; comma-separated) [free]:" in output
    assert "\r\x1b[2K" in output  # the progress line is redrawn in place
    assert "is READY" in output

    from services.models import Service

    service = Service.objects.get(owner=user, name="asked")
    assert service.description == "Sums numbers on a terminal"
    assert service.quantum_backend == "NONE"


def test_ctrl_c_while_run_waits_leaves_the_job_running_and_exits_130(portal_cli, celery_worker, user):
    import signal

    from jobs.models import Job

    assert portal_cli("init", "sleeper").returncode == 0
    folder = portal_cli.cwd / "sleeper"
    # It sleeps for this test's input only: the build's smoke test runs the spec's example and
    # must end within its short timeout.
    (folder / "src" / "program.py").write_text(
        "import time\n\ndef run(data=None, params=None):\n"
        "    if (data or {}).get('values') == [120]:\n        time.sleep(120)\n    return {}\n"
    )
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    assert portal_cli("up", "--silent", cwd=folder).returncode == 0
    process = portal_cli.popen("run", "-d", '{"values": [120]}', cwd=folder)
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # progress lines, one per status change off a terminal
        seen.append(line)
        if line.rstrip().endswith(": RUNNING"):
            break
    else:
        raise AssertionError(f"planqk run never showed RUNNING: {seen}")
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == ExitCode.INTERRUPTED
    assert "Stopped waiting. The job goes on" in rest
    assert "Traceback" not in rest
    job = Job.objects.get(service_version__service__name="sleeper")
    assert job.status == "RUNNING"
    from jobs.services import job_cancel

    job_cancel(job=job)  # free the worker for the next test
