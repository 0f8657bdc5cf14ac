"""The marketplace catalogue and service pages (HTML and REST API)."""

from __future__ import annotations

import pytest
import yaml
from django.utils import timezone

from services.models import BuildStatus, Lifecycle, PlanKind, Service
from tests.conftest import api_client_for, make_user
from tests.payments.helpers import make_plan, make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(db):
    return make_user("provider@example.com")


@pytest.fixture
def catalogue(provider):
    """Two listed services and several that must never be listed."""
    bell = make_service(provider, "bell-states", title="Bell states", description="Entangles **two qubits**.",
                        backend="IBM")  # fmt: skip
    make_plan(bell)
    qubo = make_service(provider, "qubo-solver", description="Solves QUBO problems by annealing.", backend="DWAVE")
    make_plan(qubo, PlanKind.PER_EXECUTION, 30)
    make_service(provider, "draft", lifecycle=Lifecycle.CREATED)
    make_service(provider, "internal", lifecycle=Lifecycle.ACCESSIBLE)
    make_service(provider, "still-building", ready=False)
    gone = make_service(provider, "deleted-one")
    Service.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    unpublished_version = make_service(provider, "unpublished-version")
    unpublished_version.versions.update(unpublished_at=timezone.now())
    failed = make_service(provider, "failed-build")
    failed.versions.update(status=BuildStatus.FAILED)
    return {"bell": bell, "qubo": qubo}


def names(response) -> list[str]:
    return [s.name for s in response.context["services"]]


def test_only_published_services_with_a_callable_version_are_listed(client, catalogue):
    response = client.get("/marketplace/")
    assert response.status_code == 200
    assert sorted(names(response)) == ["bell-states", "qubo-solver"]
    html = response.content.decode()
    assert "Bell states" in html
    assert "by provider" in html  # the provider, not their e-mail address
    assert "provider@example.com" not in html


def test_search_filters_and_sorting(client, catalogue):
    assert names(client.get("/marketplace/", {"q": "annealing"})) == ["qubo-solver"]
    assert names(client.get("/marketplace/", {"q": "QUBITS"})) == ["bell-states"]
    assert names(client.get("/marketplace/", {"q": "bell two"})) == ["bell-states"]
    assert names(client.get("/marketplace/", {"backend": "DWAVE"})) == ["qubo-solver"]
    assert names(client.get("/marketplace/", {"pricing": "free"})) == ["bell-states"]
    assert names(client.get("/marketplace/", {"pricing": "paid"})) == ["qubo-solver"]
    assert names(client.get("/marketplace/", {"sort": "name"})) == ["bell-states", "qubo-solver"]
    assert names(client.get("/marketplace/", {"sort": "price"})) == ["bell-states", "qubo-solver"]
    assert names(client.get("/marketplace/", {"sort": "newest"})) == ["qubo-solver", "bell-states"]
    empty = client.get("/marketplace/", {"q": "nothing-like-this"})
    assert names(empty) == []
    assert "No published service matches" in empty.content.decode()


def test_bad_filter_values_are_ignored_not_errors(client, catalogue):
    response = client.get("/marketplace/", {"backend": "QUANTUM-FOAM", "sort": "';drop", "page": "x"})
    assert response.status_code == 200


def test_htmx_gets_only_the_results(client, catalogue):
    response = client.get("/marketplace/", {"q": "bell"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'id="results"' in html
    assert "<html" not in html
    assert "Bell states" in html


def test_pages_of_twelve(client, provider):
    for i in range(14):
        make_plan(make_service(provider, f"svc-{i:02d}"))
    first = client.get("/marketplace/", {"sort": "name"})
    assert len(first.context["services"]) == 12
    assert "Page 1 of 2" in first.content.decode()
    second = client.get("/marketplace/", {"sort": "name", "page": 2})
    assert names(second) == ["svc-12", "svc-13"]


def test_empty_marketplace_says_what_to_do(client, db):
    html = client.get("/marketplace/").content.decode()
    assert "No services are published" in html
    assert "/services/" in html


def test_service_page_shows_everything_a_subscriber_needs(client, catalogue):
    bell = catalogue["bell"]
    response = client.get(f"/marketplace/{bell.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>two qubits</strong>" in html
    endpoint = f"http://testserver/gateway/{bell.owner.uuid}/bell-states/1.0.0/"
    assert endpoint in html
    assert "from planqk_client import PlanqkServiceClient" in html
    assert f"&quot;{endpoint}&quot;," in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert "js.stripe.com" not in html
    assert "Free" in html
    assert "Log in to subscribe" in html


def test_description_markdown_is_rendered_safely(client, provider):
    service = make_service(
        provider,
        "xss",
        description="Hi <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>",
    )
    html = client.get(f"/marketplace/{service.pk}/").content.decode()
    assert "<script>alert(1)" not in html
    assert "javascript:alert" not in html
    assert "onerror" not in html


def test_spec_is_served_for_swagger_and_as_a_download(client, catalogue):
    bell = catalogue["bell"]
    spec = client.get(f"/marketplace/{bell.pk}/openapi.json")
    assert spec.status_code == 200
    data = spec.json()
    assert data["info"]["title"] == "Sum service"
    assert data["servers"][0]["url"] == f"http://testserver/gateway/{bell.owner.uuid}/bell-states/1.0.0"
    download = client.get(f"/marketplace/{bell.pk}/openapi/download")
    assert download["Content-Disposition"] == 'attachment; filename="bell-states-1.0.0-openapi.yml"'
    assert yaml.safe_load(download.content)["info"]["title"] == "Sum service"


def test_a_version_without_a_readable_spec_says_so(client, provider):
    service = make_service(provider, "nospec", api_spec="")
    html = client.get(f"/marketplace/{service.pk}/").content.decode()
    assert "This version has no API spec." in html
    assert client.get(f"/marketplace/{service.pk}/openapi.json").status_code == 404
    assert client.get(f"/marketplace/{service.pk}/openapi/download").status_code == 404
    broken = make_service(provider, "broken", api_spec="a: [unclosed")
    assert client.get(f"/marketplace/{broken.pk}/").status_code == 200
    assert client.get(f"/marketplace/{broken.pk}/openapi.json").json()["code"] == "spec:unreadable"


def test_unlisted_services_are_404_except_a_preview_for_their_owner(client, provider, other_user):
    draft = make_service(provider, "draft-one", lifecycle=Lifecycle.CREATED)
    assert client.get(f"/marketplace/{draft.pk}/").status_code == 404
    assert client.get("/marketplace/00000000-0000-0000-0000-000000000000/").status_code == 404
    client.force_login(other_user)
    assert client.get(f"/marketplace/{draft.pk}/").status_code == 404
    client.force_login(provider)
    preview = client.get(f"/marketplace/{draft.pk}/")
    assert preview.status_code == 200
    assert "Preview" in preview.content.decode()


def test_rest_api_lists_and_gets_published_services(catalogue, user):
    api = api_client_for(user)
    listing = api.get("/api/v1/marketplace/services/", {"search": "qubo"})
    assert listing.status_code == 200
    body = listing.json()
    assert body["count"] == 1
    item = body["results"][0]
    assert item["name"] == "qubo-solver"
    assert item["plans"][0]["kind"] == "PER_EXECUTION"
    assert item["plans"][0]["price_cents"] == 30
    assert item["versions"][0]["endpoint_url"].endswith("/qubo-solver/1.0.0/")
    assert api.get("/api/v1/marketplace/services/", {"pricing": "free"}).json()["count"] == 1
    bad = api.get("/api/v1/marketplace/services/", {"quantum_backend": "FOAM"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid"
    detail = api.get(f"/api/v1/marketplace/services/{catalogue['bell'].pk}/")
    assert detail.json()["title"] == "Bell states"
    draft = make_service(catalogue["bell"].owner, "hidden", lifecycle=Lifecycle.CREATED)
    assert api.get(f"/api/v1/marketplace/services/{draft.pk}/").status_code == 404


def test_python_snippet_fits_the_client_and_uses_the_specs_example():
    import ast
    import inspect
    from types import SimpleNamespace

    from marketplace.rendering import python_snippet
    from planqk_client import PlanqkServiceClient
    from planqk_template import files_dir

    spec = (files_dir() / "openapi-spec.yml").read_text()
    snippet = python_snippet(endpoint_url="http://h/gateway/u/sum/1.0.0/", version=SimpleNamespace(api_spec=spec))
    tree = ast.parse(snippet)
    calls = {
        node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id: node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
    }
    # Every call the snippet makes exists on the client with those arguments.
    for name, method in [
        ("PlanqkServiceClient", PlanqkServiceClient),
        ("start_execution", PlanqkServiceClient.start_execution),
        ("wait_for_final_state", PlanqkServiceClient.wait_for_final_state),
        ("get_result", PlanqkServiceClient.get_result),
    ]:
        call = calls[name]
        args = [None] * len(call.args)
        kwargs = {kw.arg: None for kw in call.keywords}
        receiver = [] if name == "PlanqkServiceClient" else [None]
        inspect.signature(method).bind(*receiver, *args, **kwargs)
    start = calls["start_execution"]
    given = {kw.arg: ast.literal_eval(kw.value) for kw in start.keywords}
    assert given == {"data": {"values": [100, 50, 200, 70, 0.69]}, "params": {"round_off": False}}
