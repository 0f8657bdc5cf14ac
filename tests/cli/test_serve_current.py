"""`planqk init --current` and `planqk serve` on the current generation: the template runs, its
result arrives as HAL with its result file, secrets reach the program and never its log."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from .conftest import start_serve, wait_until

SECRET = "serve-secret-91f2c7"

SECRET_PROGRAM = """
import os


class SecretValue:
    def __init__(self, value):
        self._value = value

    def unwrap(self):
        return self._value


def run(values: list[float], api_token: SecretValue) -> dict:
    token = api_token.unwrap()
    print("token:", token)
    with open(os.path.join(os.environ["OUTPUT_DIRECTORY"], "../../escape.txt"), "w") as fh:
        fh.write("escaped?")
    os.symlink("/etc/passwd", os.path.join(os.environ["OUTPUT_DIRECTORY"], "passwd"))
    return {"total": sum(values), "token_length": len(token)}
"""


@pytest.fixture
def current_template(cli) -> Path:
    result = cli("init", "--current", "hub-service")
    assert result.returncode == 0, str(result)
    assert "current generation" in result.output
    return cli.cwd / "hub-service"


def wait_final(url: str, job_id: str) -> dict:
    def final():
        job = requests.get(f"{url}/{job_id}", timeout=10).json()
        return job if job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None

    return wait_until(final, message=f"execution {job_id} to end")


def test_the_current_template_runs_under_serve_with_its_hal_result_file_and_listing(cli, current_template):
    server = start_serve(cli, current_template)
    try:
        url = server.url
        created = requests.post(
            url + "/", json={"data": {"values": [100, 50, 200, 70, 0.69]}, "$tags": ["local"]}, timeout=10
        )
        assert created.status_code == 201, created.text
        execution = created.json()
        assert execution["tags"] == ["local"]
        assert execution["type"] == "MANAGED"
        final = wait_final(url, execution["id"])
        assert final["status"] == "SUCCEEDED", requests.get(f"{url}/{execution['id']}/log", timeout=10).text

        result = requests.get(f"{url}/{execution['id']}/result", timeout=10).json()
        assert result["sum"] == 420.69
        assert result["count"] == 5
        assert result["_embedded"]["status"]["id"] == execution["id"]
        link = result["_links"]["values.csv"]["href"]
        download = requests.get(link, timeout=10)
        assert download.status_code == 200
        assert download.headers["Content-Disposition"] == 'attachment; filename="values.csv"'
        assert download.text == "value\n100.0\n50.0\n200.0\n70.0\n0.69\n"
        missing = requests.get(f"{url}/{execution['id']}/result/..%2F..%2Fetc%2Fpasswd", timeout=10)
        assert missing.status_code == 404
        assert missing.json()["code"] == "execution:result-file-not-found"

        listing = requests.get(url + "/", timeout=10)
        assert [item["id"] for item in listing.json()] == [execution["id"]]
        assert listing.headers["X-Total-Count"] == "1"

        # The request body schema of the template's spec applies to the request object.
        refused = requests.post(url + "/", json={"data": {"values": ["x"]}}, timeout=10)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["path"] == "data.values[0]"
    finally:
        server.stop()


def test_secrets_reach_the_program_and_never_its_log_and_links_are_not_result_files(cli, current_template):
    (current_template / "src" / "program.py").write_text(SECRET_PROGRAM)
    (current_template / "openapi-spec.yml").unlink()
    server = start_serve(cli, current_template)
    try:
        url = server.url
        created = requests.post(url + "/", json={"values": [1, 2], "$secrets": {"api_token": SECRET}}, timeout=10)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        assert wait_final(url, job_id)["status"] == "SUCCEEDED"
        result = requests.get(f"{url}/{job_id}/result", timeout=10).json()
        assert result["total"] == 3
        assert result["token_length"] == len(SECRET)
        assert set(result["_links"]) == {"self", "status"}  # the symlink is not a result file
        log = requests.get(f"{url}/{job_id}/log", timeout=10)
        text = log.text + requests.get(f"{url}/{job_id}/logs", timeout=10).text
        assert "token: [redacted]" in text
        assert SECRET not in text
        assert "'passwd' is a link: not kept" in text

        bad = requests.post(url + "/", json={"values": [1], "$secrets": {"no-dashes": "x"}}, timeout=10)
        assert bad.status_code == 422
        assert bad.json()["code"] == "input:invalid"
    finally:
        server.stop()
