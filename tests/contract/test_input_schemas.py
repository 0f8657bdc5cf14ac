"""Schema-first input: every road checks data and params against the service's API spec before a job exists.

The same invalid inputs go to the sum and Bell samples through the gateway, the REST API and
`planqk serve`: each is a 422 with the same list of errors everywhere, and afterwards no job and
no usage record exist. Valid inputs still run.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from django.test import Client

from jobs import engine
from jobs.models import Job, JobStatus
from payments.models import UsageRecord
from planqk_samples import write_sample
from tests.applications.conftest import fetch_token, make_app, make_service, subscribe
from tests.cli.conftest import Cli, start_serve
from tests.conftest import api_client_for, make_user

SUM_CASES = [
    ({"data": {"values": "abc"}}, [("data.values", "not of type 'array'")]),
    ({"data": {"values": [1, "x", 3]}}, [("data.values[1]", "not of type 'number'")]),
    ({"data": {"values": {"a": 1}}}, [("data.values", "not of type 'array'")]),
    ({"data": {"values": [True]}}, [("data.values[0]", "not of type 'number'")]),
    # OpenAPI 3.0: null is refused twice, as not nullable and as not a number.
    ({"data": {"values": [None]}}, [("data.values[0]", "not nullable"), ("data.values[0]", "not of type 'number'")]),
    ({"data": {"values": 5}}, [("data.values", "not of type 'array'")]),
    ({"data": {"values": [[1]]}}, [("data.values[0]", "not of type 'number'")]),
    ({"params": {"round_off": "yes"}}, [("params.round_off", "not of type 'boolean'")]),
    ({"params": {"round_off": 1}}, [("params.round_off", "not of type 'boolean'")]),
    ({"params": {"round_off": None}}, [("params.round_off", "not nullable"), ("params.round_off", "not of type")]),
    (
        {"data": {"values": "abc"}, "params": {"round_off": "no"}},
        [("data.values", "not of type 'array'"), ("params.round_off", "not of type 'boolean'")],
    ),
    (
        {"data": {"values": [1, "a", "b"]}},
        [("data.values[1]", "not of type 'number'"), ("data.values[2]", "not of type 'number'")],
    ),
]
BELL_CASES = [
    ({"params": {"shots": "many"}}, [("params.shots", "not of type 'integer'")]),
    ({"params": {"shots": 0}}, [("params.shots", "less than the minimum")]),
    ({"params": {"shots": -1}}, [("params.shots", "less than the minimum")]),
    ({"params": {"shots": 1.5}}, [("params.shots", "not of type 'integer'")]),
    ({"params": {"shots": 2_000_000}}, [("params.shots", "greater than the maximum")]),
    ({"params": {"shots": True}}, [("params.shots", "not of type 'integer'")]),
    ({"params": {"shots": None}}, [("params.shots", "not nullable"), ("params.shots", "not of type 'integer'")]),
    ({"params": {"seed": "x"}}, [("params.seed", "not of type 'integer'")]),
    ({"params": {"seed": 1.5}}, [("params.seed", "not of type 'integer'")]),
    ({"params": {"backend": 5}}, [("params.backend", "not of type 'string'")]),
    ({"params": {"backend": ["aer"]}}, [("params.backend", "not of type 'string'")]),
]
VALID = {"sum": {"data": {"values": [100, 50, 200, 70, 0.69]}, "params": {"round_off": False}}, "qiskit_bell": {}}


def _message_ok(expected: list[tuple[str, str]], errors: list[dict]) -> bool:
    return [e["path"] for e in errors] == [path for path, _ in expected] and all(
        part in e["message"] for e, (_, part) in zip(errors, expected, strict=True)
    )


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


pytestmark = pytest.mark.django_db


@pytest.fixture
def roads(tmp_path):
    """``{sample: {road: post(body) -> (status, json)}}`` for the sum and Bell samples."""
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    cli = Cli(home=tmp_path / "home", cwd=tmp_path / "work")
    provider, subscriber = make_user("provider@example.com"), make_user("subscriber@example.com")
    found, servers = {}, []
    for sample in ("sum", "qiskit_bell"):
        target = make_service(provider, name=sample.replace("_", "-"), sample=sample)
        app = make_app(subscriber, f"app for {sample}")
        subscribe(app, target)
        token = fetch_token(Client(), app)
        folder = tmp_path / sample
        write_sample(sample, folder)
        served = start_serve(cli, folder)
        servers.append(served)

        def gateway(body, target=target, token=token):
            response = Client().post(
                target.path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
            )
            return response.status_code, response.json()

        def rest(body, target=target):
            response = api_client_for(subscriber).post(
                "/api/v1/jobs/", {"service_id": str(target.service.pk), **body}, format="json"
            )
            return response.status_code, response.json()

        found[sample] = {"gateway": gateway, "rest": rest, "serve": lambda body, url=served.url: _post(url + "/", body)}
    yield found
    for served in servers:
        served.stop()


CASES = [("sum", body, expected) for body, expected in SUM_CASES] + [
    ("qiskit_bell", body, expected) for body, expected in BELL_CASES
]


def test_invalid_input_is_422_with_the_same_errors_on_every_road_and_costs_nothing(roads):
    assert len(CASES) >= 20
    for sample, body, expected in CASES:
        answers = {road: post(body) for road, post in roads[sample].items()}
        for road, (status, payload) in answers.items():
            assert status == 422, (sample, body, road, payload)
            assert payload["code"] == "input:invalid", (body, road)
            assert _message_ok(expected, payload["errors"]), (body, road, payload["errors"])
        assert answers["gateway"][1]["errors"] == answers["rest"][1]["errors"] == answers["serve"][1]["errors"], body
    assert not Job.objects.exists()
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize("sample", ["sum", "qiskit_bell"])
def test_valid_input_still_runs_on_every_road(roads, sample):
    for road, post in roads[sample].items():
        status, payload = post(VALID[sample])
        assert status == 201, (road, payload)
    assert Job.objects.count() == 2  # the gateway's and the REST API's
    if sample == "sum":
        job = Job.objects.filter(source="GATEWAY").get()
        engine.execute_job(str(job.pk))
        job.refresh_from_db()
        assert (job.status, job.result) == (JobStatus.SUCCEEDED, {"sum": 420.69})


def test_input_from_a_data_pool_file_is_checked_when_it_is_read(roads, settings, tmp_path):
    from datapools.services import datafile_create_from_json, datapool_create

    settings.MEDIA_ROOT = str(tmp_path / "media")
    subscriber = make_user("reader@example.com")
    target = make_service(make_user("p2@example.com"), name="sum-ref", sample="sum")
    app = make_app(subscriber)
    subscribe(app, target)
    pool = datapool_create(user=subscriber, name="inputs")
    bad = datafile_create_from_json(user=subscriber, pool=pool, name="bad.json", payload={"values": ["a"]})
    response = api_client_for(subscriber).post(
        "/api/v1/jobs/", {"service_id": str(target.service.pk), "dataRef": bad.reference}, format="json"
    )
    assert response.status_code == 201
    job = Job.objects.get(pk=response.json()["id"])
    engine.execute_job(str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.error_code, job.runtime_starts) == (JobStatus.FAILED, "input:invalid", 0)
    assert "data.values[0]" in job.error_detail
    assert UsageRecord.objects.get(job=job).price_cents == 0


def _spec(data_schema: dict, components: dict | None = None) -> dict:
    body = {"type": "object", "properties": {"data": data_schema}}
    spec = {
        "openapi": "3.0.3",
        "paths": {"/": {"post": {"requestBody": {"content": {"application/json": {"schema": body}}}}}},
    }
    if components is not None:
        spec["components"] = {"schemas": components}
    return spec


def test_recursive_schemas_are_checked_all_the_way_down():
    from planqk_service_api.schema import input_schemas

    tree = {
        "type": "object",
        "properties": {
            "v": {"type": "number"},
            "kids": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}},
        },
    }
    schemas = input_schemas(_spec({"$ref": "#/components/schemas/Tree"}, {"Tree": tree}))
    assert schemas.errors("data", {"v": 1, "kids": [{"v": 2, "kids": [{"v": "deep"}]}]}) == [
        {"path": "data.kids[0].kids[0].v", "message": "'deep' is not of type 'number'"}
    ]
    assert schemas.errors("data", {"v": 1, "kids": []}) == []
    assert schemas.errors("params", {"anything": True}) == []  # no params schema: any object


@pytest.mark.parametrize(
    "data_schema",
    [
        {"$ref": "https://elsewhere.invalid/schema.json"},
        {"type": "object", "properties": {"x": {"$ref": "other.yml#/X"}}},
        {"$ref": "#/components/schemas/Missing"},
    ],
)
def test_external_or_dangling_refs_make_the_schemas_unusable(data_schema):
    from planqk_service_api.schema import SchemaError, input_schemas

    with pytest.raises(SchemaError):
        input_schemas(_spec(data_schema, {}))
