"""Docs that tell the truth: the curl and Python examples the pages show run as pasted, and a
spec with the template's placeholder text gets a warning for its provider."""

from __future__ import annotations

import ast
import html
import os
import re
import subprocess

import pytest
from django.test import Client

from jobs.models import Job
from tests.applications.conftest import fetch_token, make_app, make_service, subscribe
from tests.conftest import make_user


def _host(live_server) -> str:
    return live_server.url.split("://", 1)[1]


def _run_shown_curl(command: str, token: str) -> str:
    """Run a curl command exactly as a page shows it (a shell, $ACCESS_TOKEN set), return its output."""
    completed = subprocess.run(
        ["bash", "-c", command + " -s -w '\\n%{http_code}'"],
        env={**os.environ, "ACCESS_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sample", ["sum", "qiskit_bell"])
def test_the_shown_curl_commands_run_as_pasted(live_server, user, sample):
    provider = make_user("provider@example.com")
    target = make_service(provider, name=sample.replace("_", "-"), sample=sample)
    app = make_app(user)
    subscribe(app, target)
    token = fetch_token(Client(), app)
    client = Client(HTTP_HOST=_host(live_server))
    client.force_login(user)

    # The application page's "How to call a service".
    page = client.get(f"/applications/{app.application.pk}/").content.decode()
    block = html.unescape(re.search(r'<pre class="json">(curl -X POST .*?)\n\ncurl', page, re.S).group(1))
    assert "{...}" not in block
    output = _run_shown_curl(block, token)
    assert output.endswith("\n201"), output

    # The subscribe page's first call (what marketplace.views._call_examples shows after subscribing).
    from django.test import RequestFactory

    from marketplace.views import _call_examples

    request = RequestFactory().get("/", HTTP_HOST=_host(live_server))
    shown = _call_examples(request, target.service, target.version)["call_curl"]
    assert _run_shown_curl(shown, token).endswith("\n201")

    # The Python example on the service page passes the same example input.
    page = client.get(f"/marketplace/{target.service.pk}/").content.decode()
    snippet = html.unescape(re.search(r'data-testid="python-snippet"><code>(.*?)</code>', page, re.S).group(1))
    call = ast.parse(re.search(r"client\.start_execution\(.*\)", snippet).group(0)).body[0].value
    arguments = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    response = Client().post(
        target.path, arguments, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 201, response.content
    assert Job.objects.filter(service=target.service).count() == 3


PLACEHOLDER_SPEC = """
openapi: 3.0.3
info: {title: Mine, version: "1.0.0", description: "Adapt the `InputData`, `InputParams` and `ResultData` schemas."}
paths:
  /:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                data: {type: object, description: "The problem to solve. Describe your service's input here."}
      responses: {"201": {description: created}}
"""


@pytest.mark.django_db
def test_placeholder_text_is_flagged_for_the_provider_until_changed(user):
    from marketplace.templatetags.service_examples import spec_placeholder_text
    from planqk_samples import SAMPLES, sample_files

    provider = make_user("provider@example.com")
    target = make_service(provider, name="mine", sample=None)
    target.version.api_spec = PLACEHOLDER_SPEC
    target.version.save()
    assert spec_placeholder_text(PLACEHOLDER_SPEC) == ["Adapt the `InputData`", "Describe your service's input here"]
    owner = Client()
    owner.force_login(provider)
    for url in (f"/services/{target.service.pk}/", f"/marketplace/{target.service.pk}/"):
        page = owner.get(url).content.decode()
        assert 'data-testid="spec-placeholder-warning"' in page, url
    stranger = Client()
    stranger.force_login(user)
    assert "spec-placeholder-warning" not in stranger.get(f"/marketplace/{target.service.pk}/").content.decode()
    # Changed: the warning goes. The template and the samples have none (comments do not count).
    target.version.api_spec = PLACEHOLDER_SPEC.replace("Describe your service's input here", "A QUBO").replace(
        "Adapt the `InputData`, `InputParams` and `ResultData` schemas.", "Solves QUBOs."
    )
    target.version.save()
    assert "spec-placeholder-warning" not in owner.get(f"/services/{target.service.pk}/").content.decode()
    for name in SAMPLES:
        assert spec_placeholder_text(sample_files(name)["openapi-spec.yml"].decode()) == [], name
