"""The current generation through the CLI and a running portal: `planqk init --current`, test it
locally, `planqk up` (a zip, built by a real worker), `planqk run`; the job keeps its result file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_init_current_up_and_run_through_the_portal(cli, live_server, celery_worker, user):
    cli.endpoint = live_server.url
    assert cli("init", "--current", "hub-sum").returncode == 0
    folder = cli.cwd / "hub-sum"
    local = subprocess.run([sys.executable, "-m", "src"], cwd=folder, capture_output=True, text=True, check=True)
    assert json.loads(local.stdout) == {"sum": 420.69, "count": 5}
    assert (folder / "out" / "values.csv").is_file()

    assert cli("login", "-t", token_for(user)).returncode == 0
    up = cli("up", "--silent", "-n", "hub-sum", cwd=folder)
    assert up.returncode == 0, str(up)
    assert "READY" in up.stderr

    from jobs.models import Job, JobResultFile
    from services.models import Generation, Service

    version = Service.objects.get(owner=user, name="hub-sum").versions.get()
    assert version.generation == Generation.CURRENT

    run = cli("run", cwd=folder)  # input/input.json, the request object
    assert run.returncode == 0, str(run)
    assert json.loads(run.stdout) == {"sum": 420.69, "count": 5}
    job = Job.objects.get(service_version=version)
    files = list(JobResultFile.objects.filter(job=job))
    assert [f.name for f in files] == ["values.csv"]
    with files[0].file.open("rb") as fh:
        assert fh.read().decode() == "value\n100.0\n50.0\n200.0\n70.0\n0.69\n"
