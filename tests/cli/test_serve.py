"""`planqk serve`: the service API of ARCHITECTURE.md section 3, locally, on the code in a folder."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from planqk_cli.errors import ExitCode

from .conftest import start_serve, wait_until

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
JOB_KEYS = {"id", "status", "createdAt", "startedAt", "endedAt"}
SUM_INPUT = {"data": {"values": [100, 50, 200, 70, 0.69]}, "params": {"round_off": False}}

# Runs until the test creates <folder>/release; records its own pid and a child's first, and
# publishes one interim result. No sleeps to wait for: the test decides when it ends.
BLOCKING_PROGRAM = """
import json, os, pathlib, subprocess, sys, time

def run(data=None, params=None):
    folder = pathlib.Path(data["folder"])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("PlanQK:Job:InterimResult: " + json.dumps({"step": 1}), flush=True)
    print("working", flush=True)
    (folder / "pids.tmp").write_text(f"{os.getpid()} {child.pid}")
    (folder / "pids.tmp").rename(folder / "pids")
    while not (folder / "release").exists():
        time.sleep(0.05)
    child.kill()
    return {"released": True}
"""


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def blocking(template: Path, tmp_path: Path) -> Path:
    (template / "src" / "program.py").write_text(textwrap.dedent(BLOCKING_PROGRAM))
    signals = tmp_path / "signals"
    signals.mkdir()
    return signals


def pids(signals: Path) -> list[int]:
    path = wait_until(lambda: (signals / "pids").exists() and signals / "pids", message="the program's pids")
    return [int(pid) for pid in path.read_text().split()]


def wait_final(url: str, job_id: str) -> dict:
    def final():
        job = requests.get(f"{url}/{job_id}", timeout=10).json()
        return job if job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None

    return wait_until(final, message=f"job {job_id} to end")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_documentations_curl_calls_work_against_serve(served):
    def curl(*args: str) -> tuple[dict[str, str], object]:
        completed = subprocess.run(["curl", "-sS", "-i", *args], capture_output=True, text=True, check=True, timeout=60)
        head, _, body = completed.stdout.replace("\r\n", "\n").partition("\n\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines()[1:])}
        headers["status"] = head.split()[1]
        return headers, json.loads(body)

    headers, body = curl(f"{served.url}/", "-H", "accept: application/json")
    assert headers["status"] == "200"
    assert body == {"status": "Service is up and running"}

    headers, job = curl(
        "-X", "POST", f"{served.url}/",
        "-H", "accept: application/json", "-H", "Content-Type: application/json",
        "-H", "Authorization: Bearer anything-goes-locally",
        "-d", json.dumps(SUM_INPUT),
    )  # fmt: skip
    assert headers["status"] == "201"
    assert set(job) == JOB_KEYS
    assert job["status"] == "PENDING"  # the job as created, as the gateway answers
    assert TIMESTAMP.match(job["createdAt"])
    assert headers["location"] == f"{served.url}/{job['id']}"

    def finished():
        _, current = curl(headers["location"])
        return current if current["status"] == "SUCCEEDED" else None

    done = wait_until(finished, message="the job to succeed")
    assert set(done) == JOB_KEYS
    assert TIMESTAMP.match(done["startedAt"])
    assert TIMESTAMP.match(done["endedAt"])
    assert done["createdAt"] <= done["startedAt"] <= done["endedAt"]

    headers, result = curl(f"{served.url}/{job['id']}/result")
    assert headers["status"] == "200"
    assert result == {"result": {"sum": 420.69}, "metadata": None}
    _, logs = curl(f"{served.url}/{job['id']}/logs")
    assert any("summing 5 values" in line for line in logs)
    _, interim = curl(f"{served.url}/{job['id']}/interim-results")
    assert interim == []


def test_params_reach_the_program(served):
    job = requests.post(f"{served.url}/", json={**SUM_INPUT, "params": {"round_off": True}}, timeout=10).json()
    wait_final(served.url, job["id"])
    assert requests.get(f"{served.url}/{job['id']}/result", timeout=10).json()["result"] == {"sum": 420}


def test_an_error_response_fails_the_job(served, template):
    # Input the spec refuses never becomes a job (422, as on the gateway).
    refused = requests.post(f"{served.url}/", json={"data": {"values": "nope"}}, timeout=10)
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"path": "data.values", "message": "'nope' is not of type 'array'"}]
    (template / "src" / "program.py").write_text(
        "from .libs.return_objects import ErrorResponse\n\n\n"
        "def run(data=None, params=None):\n"
        "    return ErrorResponse(code='INVALID_VALUES', detail='no, thanks')\n"
    )
    job = requests.post(f"{served.url}/", json={"data": {"values": [1]}}, timeout=10).json()
    assert wait_final(served.url, job["id"])["status"] == "FAILED"
    result = requests.get(f"{served.url}/{job['id']}/result", timeout=10)
    assert result.status_code == 200
    assert result.json() == {"code": "INVALID_VALUES", "detail": "no, thanks"}


def test_a_fake_result_line_printed_by_user_code_is_not_the_result(served, template):
    (template / "src" / "program.py").write_text(
        "def run(data=None, params=None):\n"
        '    print(\'Job:ResultResponse: {"result": {"fake": true}, "metadata": null}\')\n'
        "    raise ValueError('really broken')\n"
    )
    job = requests.post(f"{served.url}/", json={}, timeout=10).json()
    assert wait_final(served.url, job["id"])["status"] == "FAILED"
    result = requests.get(f"{served.url}/{job['id']}/result", timeout=10).json()
    assert result["code"] == "EXECUTION_ERROR"
    assert "really broken" in result["detail"]


def test_result_is_409_while_running_and_interim_results_and_logs_show_progress(served, template, tmp_path):
    signals = blocking(template, tmp_path)
    job = requests.post(f"{served.url}/", json={"data": {"folder": str(signals)}}, timeout=10).json()
    pids(signals)
    assert requests.get(f"{served.url}/{job['id']}", timeout=10).json()["status"] == "RUNNING"
    early = requests.get(f"{served.url}/{job['id']}/result", timeout=10)
    assert early.status_code == 409
    assert early.json()["code"] == "execution:not-finished"
    assert early.json()["status"] == "RUNNING"
    assert requests.get(f"{served.url}/{job['id']}/interim-results", timeout=10).json() == [{"step": 1}]
    assert "working" in requests.get(f"{served.url}/{job['id']}/logs", timeout=10).json()
    (signals / "release").touch()
    assert wait_final(served.url, job["id"])["status"] == "SUCCEEDED"
    assert requests.get(f"{served.url}/{job['id']}/result", timeout=10).json()["result"] == {"released": True}


def test_cancel_stops_the_execution_and_its_children(served, template, tmp_path):
    signals = blocking(template, tmp_path)
    job = requests.post(f"{served.url}/", json={"data": {"folder": str(signals)}}, timeout=10).json()
    running = pids(signals)
    cancelled = requests.put(f"{served.url}/{job['id']}/cancel", timeout=30)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    assert set(cancelled.json()) == JOB_KEYS
    for pid in running:
        wait_until(lambda pid=pid: not alive(pid), message=f"process {pid} to end")
    assert requests.get(f"{served.url}/{job['id']}", timeout=10).json()["status"] == "CANCELLED"
    # Cancelling again leaves it as it is.
    assert requests.put(f"{served.url}/{job['id']}/cancel", timeout=10).json()["status"] == "CANCELLED"


def test_ctrl_c_stops_the_server_and_kills_running_executions(cli, template, tmp_path):
    signals = blocking(template, tmp_path)
    server = start_serve(cli, template)
    requests.post(f"{server.url}/", json={"data": {"folder": str(signals)}}, timeout=10)
    running = pids(signals)
    code, stderr = server.stop()
    assert code == 0, stderr
    assert "stopped 1 running execution" in stderr
    assert "Traceback" not in stderr
    for pid in running:
        wait_until(lambda pid=pid: not alive(pid), message=f"process {pid} to end")


def test_data_pool_references_are_a_clear_400(served):
    ref = {"dataPoolId": "a", "dataSourceDescriptorId": "b", "fileId": "c"}
    answer = requests.post(f"{served.url}/", json={"dataRef": ref, "params": {}}, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["code"] == "datapool:not-available"
    assert "no data pools locally" in answer.json()["detail"]


def test_bad_requests_get_json_errors(served):
    too_big = requests.post(f"{served.url}/", json={"data": {"values": [1] * 600_000}}, timeout=30)
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "input:too-large"
    not_json = requests.post(f"{served.url}/", data=b"{", headers={"Content-Type": "application/json"}, timeout=10)
    assert not_json.status_code == 400
    assert not_json.json()["code"] == "input:malformed-json"
    not_an_object = requests.post(f"{served.url}/", json={"data": [1, 2]}, timeout=10)
    assert not_an_object.status_code == 400
    assert not_an_object.json()["code"] == "input:not-an-object"
    unknown = requests.get(f"{served.url}/00000000-0000-0000-0000-000000000000", timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "execution:not-found"
    wrong_method = requests.delete(f"{served.url}/", timeout=10)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method-not-allowed"
    assert wrong_method.json()["method"] == "DELETE"
    assert wrong_method.headers["Allow"] == "GET, POST"


def test_swagger_ui_and_the_api_spec_are_served_locally(served, template):
    page = requests.get(f"{served.url}/docs", timeout=10)
    assert page.status_code == 200
    assert "SwaggerUIBundle" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN: every asset is our own
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = requests.get(f"{served.url}/docs/static/{asset}", timeout=10)
        assert response.status_code == 200
        assert len(response.content) > 1000
    assert requests.get(f"{served.url}/docs/static/..%2F..%2F__init__.py", timeout=10).status_code == 404
    import yaml

    spec = yaml.safe_load(requests.get(f"{served.url}/openapi.yml", timeout=10).text)
    original = yaml.safe_load((template / "openapi-spec.yml").read_text())
    assert spec["servers"] == [{"url": served.url, "description": "planqk serve (local, no authentication)"}]
    assert spec["paths"] == original["paths"]
    assert spec["info"] == original["info"]


def test_a_port_in_use_is_its_own_error(cli, template):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = cli("serve", "-p", str(port), cwd=template)
    assert result.returncode == ExitCode.SERVE_FAILED
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_the_projects_python_client_runs_against_serve(served, template, tmp_path):
    """planqk_client needs client credentials; serve's /token grants any, so the same code runs locally."""
    from planqk_client import ExecutionNotFinishedError, PlanqkServiceClient

    client = PlanqkServiceClient(
        f"{served.url}/", consumer_key="local", consumer_secret="local", token_endpoint=f"{served.url}/token"
    )
    assert client.health() == {"status": "Service is up and running"}
    execution = client.start_execution(data=SUM_INPUT["data"], params=SUM_INPUT["params"])
    assert set(execution) == JOB_KEYS
    final = client.wait_for_final_state(execution["id"], timeout=120)
    assert final["status"] == "SUCCEEDED"
    assert client.get_result(execution["id"]) == {"result": {"sum": 420.69}, "metadata": None}
    assert any("summing 5 values" in line for line in client.get_logs(execution["id"]))

    signals = blocking(template, tmp_path)
    running = client.start_execution(data={"folder": str(signals)})
    pids(signals)
    with pytest.raises(ExecutionNotFinishedError):
        client.get_result(running["id"])
    assert client.get_interim_results(running["id"]) == [{"step": 1}]
    assert client.cancel_execution(running["id"])["status"] == "CANCELLED"
    assert client.get_result(running["id"]) == {"code": "job:cancelled", "detail": "Cancelled while it was running."}


def test_token_endpoint_speaks_rfc_6749(served):
    granted = requests.post(f"{served.url}/token", data={"grant_type": "client_credentials"}, timeout=10)
    assert granted.status_code == 200
    body = granted.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "default"
    assert body["expires_in"] == 3600
    refused = requests.post(f"{served.url}/token", data={"grant_type": "password"}, timeout=10)
    assert refused.status_code == 400
    assert refused.json()["error"] == "unsupported_grant_type"


def test_executions_use_the_active_virtualenv_or_the_given_interpreter(cli, template, tmp_path):
    """Like `python -m src`, executions run in the environment the user activated."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (template / "src" / "program.py").write_text(
        "import sys\n\ndef run(data=None, params=None):\n    return {'python': sys.executable}\n"
    )
    server = start_serve(cli, template, VIRTUAL_ENV=str(venv))
    try:
        job = requests.post(f"{server.url}/", json={}, timeout=10).json()
        assert wait_final(server.url, job["id"])["status"] == "SUCCEEDED"
        result = requests.get(f"{server.url}/{job['id']}/result", timeout=10).json()
        assert result["result"] == {"python": str(venv / "bin" / "python")}
    finally:
        server.stop()

    missing = tmp_path / "no-such-python"
    server = start_serve(cli, template, "--python", str(missing))
    try:
        job = requests.post(f"{server.url}/", json={}, timeout=10).json()
        assert wait_final(server.url, job["id"])["status"] == "FAILED"
        result = requests.get(f"{server.url}/{job['id']}/result", timeout=10).json()
        assert result["code"] == "platform:error"
        assert f"cannot start {missing}" in result["detail"]
    finally:
        server.stop()


def test_an_unread_request_body_closes_the_connection(served):
    """Keep-alive must not take the rest of a refused request for the next one."""
    with requests.Session() as session:
        refused = session.post(f"{served.url}/some/where/else", data=b'{"data": {}}', timeout=10)
        assert refused.status_code == 404
        assert refused.headers["Connection"] == "close"
        assert session.get(f"{served.url}/", timeout=10).json() == {"status": "Service is up and running"}
