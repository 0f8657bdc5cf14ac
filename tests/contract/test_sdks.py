"""Real clients against the gateway: PlanQK's and Kipu Quantum Hub's own SDKs, installed from the
package index, run their whole flow as their users write it, in a subprocess of their own.

- ``planqk-service-sdk`` 1.9.1 (the 2022 API) against a 2022-generation service: health check,
  start, wait, result, interim results, cancel.
- ``planqk-service-sdk`` 2.12.1 and ``qhub-service`` 2.0.0 (the current API) against a
  current-generation service uploaded as a zip and built by the worker, under Django's test
  server and under the production server (``portal``): start with ``$secrets``
  and ``$tags``, wait, result (fields at the top level), result files (listed and downloaded),
  logs, cancel, list.

The SDKs are installed once per machine into virtual environments under ``var/sdk-venvs/``
(kept between runs; a changed requirement makes a new one). Without the package index the test
fails and says so: it never skips.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jobs.models import Job, JobLogChunk, JobStatus
from tests.applications.conftest import make_app, make_service, subscribe
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / "var" / "sdk-venvs"
SDKS = {
    "planqk-service-sdk-1.9.1": "planqk-service-sdk==1.9.1",
    "planqk-service-sdk-2.12.1": "planqk-service-sdk==2.12.1",
    "qhub-service-2.0.0": "qhub-service==2.0.0",
}
#: What a caller sends as a secret; it must reach the program and appear in no stored log.
SECRET = "sdk-secret-4b1f9e07-do-not-log"


@pytest.fixture
def provider(transactional_db):
    return make_user("provider@example.com")


def _venv_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def _install(name: str, requirement: str) -> subprocess.Popen | None:
    """Start creating the venv ``name`` with ``requirement`` unless it is there; None when it is."""
    folder = VENVS / name
    marker = folder / ".installed"
    if marker.exists() and marker.read_text() == requirement and _venv_python(name).exists():
        return None
    script = (
        f'set -e; rm -rf "{folder}"; "{sys.executable}" -m venv "{folder}"; '
        f'"{folder}/bin/python" -m pip install --disable-pip-version-check -q "{requirement}"; '
        f'printf %s "{requirement}" > "{marker}"'
    )
    return subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="session")
def sdk_pythons() -> dict[str, Path]:
    """The interpreter of each SDK's venv, installing what is missing (in parallel, once)."""
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / ".lock", "w") as lock:
        # Two test runs on one machine install one after the other, not over each other.
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = {name: _install(name, requirement) for name, requirement in SDKS.items()}
        failures = []
        for name, process in started.items():
            if process is None:
                continue
            output, _ = process.communicate(timeout=900)
            if process.returncode != 0:
                failures.append(f"pip install {SDKS[name]} failed (is the package index reachable?):\n{output[-3000:]}")
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)
    return {name: _venv_python(name) for name in SDKS}


def run_sdk(python: Path, script: str, **arguments: str) -> dict:
    """Run ``script`` with an SDK's interpreter; it prints one JSON object, which is returned."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "NO_PROXY": "*",
        "SDK_ARGS": json.dumps(arguments),
    }
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, f"the SDK script failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


SDK_191 = """
import json, os, time
from planqk.service.client import PlanqkServiceClient

a = json.loads(os.environ["SDK_ARGS"])
out = {}
client = PlanqkServiceClient(a["endpoint"], a["key"], a["secret"], token_endpoint=a["token_url"])
out["health"] = client.health_check().status
execution = client.start_execution(data={"values": [100, 50, 200, 70, 0.69]}, params={"round_off": False})
client.wait_for_final_state(execution.id, timeout=300, wait=0.5)
out["status"] = execution.status.value


def plain(value):
    return value.dict() if hasattr(value, "dict") else value


out["result"] = plain(execution.result())
out["interim"] = [plain(r) for r in execution.interim_results()]

slow = PlanqkServiceClient(a["slow_endpoint"], a["key"], a["secret"], token_endpoint=a["token_url"])
running = slow.start_execution(data={}, params={"steps": 600, "sleep": 1})
deadline = time.monotonic() + 300
while running.status.value != "RUNNING" and time.monotonic() < deadline:
    time.sleep(0.3)
running.cancel()
slow.wait_for_final_state(running.id, timeout=120, wait=0.5)
out["cancelled"] = running.status.value
out["ids"] = [execution.id, running.id]
print(json.dumps(out, default=str))
"""


def test_planqk_service_sdk_191_against_a_2022_service(sdk_pythons, live_server, celery_worker, user, provider):
    sum_service = make_service(provider, name="sum")
    slow_service = make_service(provider, name="slow", sample="slow")
    app = make_app(user)
    subscribe(app, sum_service)
    subscribe(app, slow_service)
    out = run_sdk(
        sdk_pythons["planqk-service-sdk-1.9.1"],
        SDK_191,
        endpoint=f"{live_server.url}{sum_service.path}",
        slow_endpoint=f"{live_server.url}{slow_service.path}",
        token_url=f"{live_server.url}/gateway/token",
        key=app.key,
        secret=app.secret,
    )
    assert out["health"] == "Service is up and running"
    assert out["status"] == "SUCCEEDED"
    assert out["result"]["result"] == {"sum": 420.69}
    assert out["interim"] == []
    assert out["cancelled"] == "CANCELLED"
    finished = Job.objects.get(pk=out["ids"][0])
    assert finished.status == JobStatus.SUCCEEDED
    assert finished.application_id == app.application.id
    assert Job.objects.get(pk=out["ids"][1]).status == JobStatus.CANCELLED


# The current SDKs: the same flow through planqk-service-sdk 2.12.1 and qhub-service 2.0.0.
CURRENT_FLOW = """
import json, os, tempfile, time

a = json.loads(os.environ["SDK_ARGS"])
if a["sdk"] == "qhub":
    from qhub.service.client import HubServiceClient as Client
else:
    from planqk.service.client import PlanqkServiceClient as Client

client = Client(a["endpoint"], a["key"], a["secret"], token_endpoint=a["token_url"])
out = {}
request = {"values": [100, 50, 200, 70, 0.69], "round_off": False}
if a["sdk"] == "qhub":
    execution = client.run(request=request, secrets={"api_token": a["secret_value"]}, tags=["sdk", "qhub"])
else:
    execution = client.run(request={**request, "$secrets": {"api_token": a["secret_value"]}, "$tags": ["sdk"]})
out["started"] = execution.status
execution.wait_for_final_state(timeout=300, wait=0.5)
out["status"] = execution.status
out["ended_at"] = execution.ended_at
result = execution.result()
if a["sdk"] == "qhub":
    out["fields"] = result.data()
    out["embedded_status"] = result.metadata().status
else:
    out["fields"] = dict(result.model_extra or {})
    out["embedded_status"] = result.embedded.status.status
out["files"] = execution.result_files()
target = tempfile.mkdtemp()
for name in out["files"]:
    execution.download_result_file(name, target)
out["downloaded"] = {name: open(os.path.join(target, name)).read() for name in os.listdir(target)}
logs = execution.logs() or []
out["logs"] = [{"message": e.message, "severity": e.severity, "timestamp": str(e.timestamp)} for e in logs]

long = client.run(request={"values": [1], "steps": 600})
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    long.refresh()
    if long.status == "RUNNING":
        break
    time.sleep(0.3)
long.cancel()
long.wait_for_final_state(timeout=120, wait=0.5)
out["cancelled"] = long.status

again = client.get_service_execution(execution.id)
out["again"] = again.status
out["listed"] = [e.id for e in client.get_service_executions()]
out["ids"] = [execution.id, long.id]
print(json.dumps(out, default=str))
"""

CURRENT_PROGRAM = b'''\
"""A service written the current way: typed run() parameters, a return value, an output file."""
import os
import time


def run(values: list[float], round_off: bool = False, steps: int = 0) -> dict:
    token = os.environ.get("SECRET_API_TOKEN", "")
    # Careless on purpose: the platform keeps the secret out of every stored log.
    print(f"using the token {token}", flush=True)
    print("WARNING: values are summed as floats", flush=True)
    for step in range(steps):
        time.sleep(1)
        print(f"step {step}", flush=True)
    total = sum(values)
    if round_off:
        total = round(total)
    with open(os.path.join(os.environ["OUTPUT_DIRECTORY"], "values.csv"), "w") as fh:
        fh.write("value\\n" + "".join(f"{value}\\n" for value in values))
    return {"total": total, "count": len(values), "token_seen": token != ""}
'''

CURRENT_SPEC = b"""openapi: 3.0.3
info: {title: hub sum, version: "1.0"}
paths:
  /:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [values]
              properties:
                values: {type: array, items: {type: number}}
                round_off: {type: boolean}
                steps: {type: integer, minimum: 0, maximum: 600}
            example: {values: [1, 2, 3.5], round_off: false}
      responses:
        "201": {description: created}
"""


@pytest.fixture
def current_service(celery_worker, provider):
    """A current-generation service, uploaded as a zip and built by the worker, then published."""
    from payments.testing import add_test_card
    from services import services
    from services.models import BuildStatus, Generation
    from tests.services.helpers import build_log, make_zip, wait_for_status

    add_test_card(provider)
    archive = make_zip({"src/program.py": CURRENT_PROGRAM, "openapi-spec.yml": CURRENT_SPEC})
    service = services.service_create(owner=provider, name="hub-sum", archive=archive)
    version = wait_for_status(
        service.versions.get(), {BuildStatus.READY, BuildStatus.FAILED}, timeout=600, worker=celery_worker
    )
    assert version.status == BuildStatus.READY, build_log(version)
    assert version.generation == Generation.CURRENT, build_log(version)
    service = services.service_publish(service=service)
    return service, version


@pytest.mark.parametrize(("sdk", "venv"), [("planqk", "planqk-service-sdk-2.12.1"), ("qhub", "qhub-service-2.0.0")])
def test_current_sdks_against_a_current_service(sdk, venv, sdk_pythons, portal, current_service, user):
    from applications.services import subscription_create

    service, version = current_service
    app = make_app(user)
    subscription_create(application=app.application, service=service, plan=service.plans.first())
    # Another subscriber's execution must never show in this caller's list.
    other = make_app(user, name="another app")
    other_subscription = subscription_create(application=other.application, service=service, plan=service.plans.first())
    from jobs.admission import execution_admit

    foreign = execution_admit(
        service_version=version, owner=user, data={"values": [1]}, subscription=other_subscription
    )

    # The endpoint exactly as the portal shows it (with its trailing slash).
    endpoint = f"{portal.url}/gateway/{service.owner.uuid}/{service.name}/{version.version}/"
    out = run_sdk(
        sdk_pythons[venv],
        CURRENT_FLOW,
        sdk=sdk,
        endpoint=endpoint,
        token_url=f"{portal.url}/gateway/token",
        key=app.key,
        secret=app.secret,
        secret_value=SECRET,
    )
    assert out["started"] == "PENDING"
    assert out["status"] == "SUCCEEDED", out
    assert out["ended_at"]
    assert out["fields"] == {"total": 420.69, "count": 5, "token_seen": True}
    assert out["embedded_status"] == "SUCCEEDED"
    assert out["files"] == ["values.csv"]
    assert out["downloaded"] == {"values.csv": "value\n100.0\n50.0\n200.0\n70.0\n0.69\n"}
    messages = [entry["message"] for entry in out["logs"]]
    assert any(m == "WARNING: values are summed as floats" for m in messages), messages
    assert {entry["severity"] for entry in out["logs"]} >= {"INFO", "WARNING"}
    assert SECRET not in json.dumps(out["logs"])
    assert out["cancelled"] == "CANCELLED"
    assert out["again"] == "SUCCEEDED"
    assert set(out["listed"]) == set(out["ids"])
    assert str(foreign.id) not in out["listed"]

    job = Job.objects.get(pk=out["ids"][0])
    assert job.tags == (["sdk", "qhub"] if sdk == "qhub" else ["sdk"])
    stored_logs = "".join(JobLogChunk.objects.filter(job__service_version=version).values_list("text", flat=True))
    assert "using the token" in stored_logs
    assert SECRET not in stored_logs
    assert SECRET not in repr(Job.objects.filter(pk=job.pk).values().get())
    # The same execution on the job page of the application's owner: its result and its file.
    from django.test import Client

    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert "420.69" in page
    assert "values.csv" in page
    file_id = job.result_files.get(name="values.csv").pk
    download = browser.get(f"/jobs/{job.pk}/files/{file_id}")
    assert b"".join(download.streaming_content) == b"value\n100.0\n50.0\n200.0\n70.0\n0.69\n"

    # Nothing left for the worker once the test's tables go.
    deadline = time.monotonic() + 60
    while Job.objects.filter(service_version=version, status__in=("PENDING", "RUNNING")).exists():
        assert time.monotonic() < deadline, "an execution did not end"
        time.sleep(0.3)


SDK_LOG_ON_SERVE = """
import json, os, time
from planqk.service.client import PlanqkServiceClient

a = json.loads(os.environ["SDK_ARGS"])
client = PlanqkServiceClient(a["endpoint"], "any", "thing", token_endpoint=a["endpoint"] + "token")
execution = client.run(request={"data": {"values": [1, 2]}, "params": {"round_off": False}})
execution.wait_for_final_state(timeout=120, wait=0.3)
logs = execution.logs()
print(json.dumps({"status": execution.status, "logs": [[e.message, e.severity, str(e.timestamp)] for e in logs]}))
"""


def test_planqk_serve_answers_the_log_as_the_gateway_does(sdk_pythons, tmp_path):
    """`planqk serve` (2022 template) serves GET /{id}/log from the same contract function."""
    from tests.cli.conftest import Cli, start_serve

    cli = Cli(home=tmp_path / "home", cwd=tmp_path)
    cli.home.mkdir()
    assert cli("init", "sum-service").returncode == 0
    served = start_serve(cli, tmp_path / "sum-service")
    try:
        out = run_sdk(sdk_pythons["planqk-service-sdk-2.12.1"], SDK_LOG_ON_SERVE, endpoint=f"{served.url}/")
    finally:
        served.stop()
    assert out["status"] == "SUCCEEDED"
    assert out["logs"], out
    assert any("Job:ResultResponse:" in message for message, _, _ in out["logs"]), out
    assert {severity for _, severity, _ in out["logs"]} <= {"DEBUG", "NOTICE", "INFO", "WARNING", "ERROR"}


@pytest.mark.parametrize(("sdk", "venv"), [("planqk", "planqk-service-sdk-2.12.1"), ("qhub", "qhub-service-2.0.0")])
def test_current_sdks_against_planqk_serve(sdk, venv, sdk_pythons, tmp_path):
    """The same flow against `planqk serve` on the same current project: it answers as the gateway."""
    from tests.cli.conftest import Cli, start_serve

    project = tmp_path / "hub-sum"
    (project / "src").mkdir(parents=True)
    (project / "src" / "__init__.py").write_text("")
    (project / "src" / "program.py").write_bytes(CURRENT_PROGRAM)
    (project / "openapi-spec.yml").write_bytes(CURRENT_SPEC)
    cli = Cli(home=tmp_path / "home", cwd=tmp_path)
    cli.home.mkdir()
    served = start_serve(cli, project)
    try:
        out = run_sdk(
            sdk_pythons[venv],
            CURRENT_FLOW,
            sdk=sdk,
            endpoint=f"{served.url}/",
            token_url=f"{served.url}/token",
            key="any",
            secret="thing",
            secret_value=SECRET,
        )
    finally:
        served.stop()
    assert out["status"] == "SUCCEEDED", out
    assert out["fields"] == {"total": 420.69, "count": 5, "token_seen": True}
    assert out["embedded_status"] == "SUCCEEDED"
    assert out["files"] == ["values.csv"]
    assert out["downloaded"] == {"values.csv": "value\n100.0\n50.0\n200.0\n70.0\n0.69\n"}
    messages = [entry["message"] for entry in out["logs"]]
    assert "WARNING: values are summed as floats" in messages, messages
    assert SECRET not in json.dumps(out["logs"])
    assert out["cancelled"] == "CANCELLED"
    assert out["again"] == "SUCCEEDED"
    assert set(out["listed"]) == set(out["ids"])
