"""The template's placeholder text never reaches the public API docs: the spec Swagger UI renders
for subscribers (marketplace:openapi-json) drops the sentences that hold it; its provider keeps
the warning (tests/marketplace/test_examples.py) until they are replaced."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from marketplace.rendering import spec_placeholder_text
from tests.applications.conftest import make_app, make_service, subscribe
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

# The placeholder strings of the template's spec before they became a YAML comment (and PlanQK's
# own): in the info, in schema descriptions, mixed with real text, alone, across a line break.
OLD_TEMPLATE_SPEC = """
openapi: 3.0.3
info:
  title: PlanQK Service
  version: "1.0.0"
  description: |
    The API of a PlanQK service. Every execution is asynchronous.

    Adapt the `InputData`, `InputParams` and `ResultData` schemas to your service.
paths:
  /:
    post:
      summary: Start an execution
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                data: {$ref: "#/components/schemas/InputData"}
                params: {$ref: "#/components/schemas/InputParams"}
            example:
              data: {values: [1, 2]}
              params: {note: "Describe your service's input here"}
      responses:
        "201":
          description: Describe your service's output here.
components:
  schemas:
    InputData:
      type: object
      description: The problem to solve. Describe your service's input here.
      properties:
        values: {type: array, items: {type: number}}
    InputParams:
      type: object
      description: "Settings of one execution. Adapt the\\nInputData to your service! It is what callers send."
    ResultData:
      type: object
      description: What a successful execution returns. Describe your service's output here.
"""


def test_the_published_api_docs_carry_no_placeholder_text(user):
    provider = make_user("provider@example.com")
    target = make_service(provider, name="old", sample=None)
    target.version.api_spec = OLD_TEMPLATE_SPEC
    target.version.save()
    subscribe(make_app(user), target)
    assert len(spec_placeholder_text(OLD_TEMPLATE_SPEC)) == 3  # the build's check flags it

    subscriber = Client()
    subscriber.force_login(user)
    for viewer in (Client(), subscriber):
        response = viewer.get(f"/marketplace/{target.service.pk}/openapi.json")
        assert response.status_code == 200
        spec = response.json()
        # Examples are the provider's data: kept exactly (the curl example sends them).
        example = spec["paths"]["/"]["post"]["requestBody"]["content"]["application/json"].pop("example")
        assert example == {"data": {"values": [1, 2]}, "params": {"note": "Describe your service's input here"}}
        # No placeholder sentence is left in any text a subscriber reads...
        text = json.dumps(spec, ensure_ascii=False)
        for phrase in ("Adapt the", "Describe your service", "to your service"):
            assert phrase not in text, phrase
        # ...and the real sentences beside them stay.
        assert spec["info"]["description"] == "The API of a PlanQK service. Every execution is asynchronous."
        schemas = spec["components"]["schemas"]
        assert schemas["InputData"]["description"] == "The problem to solve."
        assert schemas["InputParams"]["description"] == "Settings of one execution. It is what callers send."
        assert schemas["ResultData"]["description"] == "What a successful execution returns."
        # A text that was only placeholder is empty (a response needs a description).
        assert spec["paths"]["/"]["post"]["responses"]["201"]["description"] == ""


def test_the_shipped_template_and_samples_lose_nothing():
    """The template and the samples have no placeholder text: the docs show their spec unchanged."""
    from marketplace.rendering import load_spec, spec_for_swagger, spec_make_safe
    from planqk_samples import SAMPLES, sample_files

    for name in SAMPLES:
        text = sample_files(name)["openapi-spec.yml"].decode()
        kwargs = {"endpoint_url": "http://h/gateway/u/s/1.0.0/", "token_url": "http://h/gateway/token"}
        assert spec_for_swagger(text, **kwargs) == spec_make_safe(load_spec(text), **kwargs), name
