"""Schemathesis against the REST API's schema and a built service's spec on the gateway.

Every operation is sent generated requests, valid and invalid by its schema, with a fixed seed
and a bounded number of examples; every answer must be documented (status, content type, body)
and never a 5xx. The REST API is called with a personal access token of a user who has a card, a
service, a job, a data pool, an application and an algorithm (so lookups can succeed); the gateway
with a token of an application subscribed to a built sum service.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, seed, settings

from tests.applications.conftest import make_app, make_service, subscribe
from tests.conftest import make_user, token_for

ROOT = Path(__file__).resolve().parents[2]
SEED = 20250601
REST_EXAMPLES = 12
GATEWAY_EXAMPLES = 25

HYPOTHESIS = settings(
    max_examples=REST_EXAMPLES,
    database=None,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)


def _leave_nothing_pending() -> None:
    """No execution is left running when the tables are flushed.

    Jobs the fuzzer started are enqueued on the test run's queue, which a session worker started
    by an earlier test may be reading: a job it is running while the flush truncates its tables
    deadlocks the two. So every job is cancelled and the test waits (bounded) until all are final.
    """
    from jobs.models import Job

    for job_id in Job.objects.active().values_list("pk", flat=True):
        Job.objects.request_cancel(job_id)
    deadline = time.monotonic() + 60
    while Job.objects.active().exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # the worker's last writes and its cleanup of the execution


@pytest.fixture
def rest_api(transactional_db, live_server, settings):
    settings.PLANQK_OWNER_REQUESTS_PER_MINUTE = 0
    settings.PLANQK_OWNER_MAX_CONCURRENT = 0
    from algorithms.models import Algorithm, Implementation
    from datapools.services import datafile_create_from_json
    from jobs.admission import execution_admit
    from payments.testing import add_test_card

    user = make_user("fuzz@example.com")
    add_test_card(user)
    target = make_service(user, name="fuzzed", sample=None, requests_per_minute=100000, max_concurrent=100000)
    execution_admit(service_version=target.version, owner=user, data={"values": [1, 2]}, params={})
    datafile_create_from_json(user=user, pool=None, name="fuzz", payload={"values": [1]})
    subscribe(make_app(user), target)
    algorithm = Algorithm.objects.create(author=user, name="Fuzzing", summary="An algorithm")
    Implementation.objects.create(algorithm=algorithm, owner=user, name="fuzzing-impl")
    yield {"base_url": live_server.url, "headers": {"Authorization": f"Bearer {token_for(user)}"}}
    _leave_nothing_pending()


@pytest.fixture
def gateway_api(transactional_db, live_server):
    provider = make_user("provider@example.com")
    target = make_service(provider, requests_per_minute=100000, max_concurrent=100000)
    caller = make_user("caller@example.com")
    app = make_app(caller)
    subscribe(app, target)
    response = requests.post(
        f"{live_server.url}/gateway/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {app.basic}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    yield {
        "base_url": f"{live_server.url}{target.path}".rstrip("/"),
        "headers": {"Authorization": f"Bearer {response.json()['access_token']}"},
    }
    _leave_nothing_pending()


def _rest_document() -> dict:
    """The REST API's schema as /api/v1/schema/ serves it (generated here: collection has no server).

    (``schemathesis.pytest.from_fixture`` would load it from the server, but fails on pytest 9.)"""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


# A card the processor refuses (an unknown or declined number, an expired card) is a well-formed
# request answered 402 with Stripe's code, as its schema documents: a schema can say what a card
# number looks like, not which cards a bank accepts. So for adding a card only, 402 counts among
# the answers to valid data (besides Schemathesis's own: 409 and 429 are such business answers).
#
# Creating a service, likewise, is answered 400 for schema-valid bodies on grounds a schema cannot
# state: a file is a file to a schema, not a zip holding a service (the upload check's answers);
# plans are JSON text; external_url follows Django's URL grammar and must resolve; an IBM or D-Wave
# service needs its owner's provider token; and multipart carries a zip or a URL, not both, which
# a oneOf would say but Schemathesis cannot generate multipart bodies from. Every other check stays
# on for it, and its schema says what it can (the name, version and resource rules).
REST_CONFIG = schemathesis.Config.from_dict(
    {
        "operations": [
            {
                "include-name": "POST /api/v1/payments/cards/",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "3xx", "401", "402", "403", "404", "409", "429", "5xx"]
                    }
                },
            },
            {
                "include-name": "POST /api/v1/services/",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
                    }
                },
            },
        ]
    }
)
rest_schema = schemathesis.openapi.from_dict(_rest_document(), config=REST_CONFIG)
gateway_schema = schemathesis.openapi.from_dict(
    yaml.safe_load((ROOT / "planqk_template" / "files" / "openapi-spec.yml").read_text())
)
# Both refuse a NUL character in any string (400: PostgreSQL's jsonb cannot store it), which a
# schema can say of named strings only, not of every string of a free-form object.
for _schema in (rest_schema, gateway_schema):
    _schema.config.generation.update(allow_x00=False)


@rest_schema.parametrize()
@seed(SEED)
@HYPOTHESIS
def test_rest_api_answers_as_its_schema_says(case, rest_api):
    case.call_and_validate(**rest_api)


@gateway_schema.parametrize()
@seed(SEED)
@settings(HYPOTHESIS, max_examples=GATEWAY_EXAMPLES)
def test_gateway_answers_as_the_template_spec_says(case, gateway_api):
    case.call_and_validate(**gateway_api)
