"""My Services pages through Django's test client: forms, errors, polling endpoints, confirmations, access."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services import provider_token_set
from planqk_samples import sample_zip
from services import services
from services.models import BuildStatus, Lifecycle, Service
from tests.services.conftest import make_provider

from .helpers import make_zip, upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]


@pytest.fixture
def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def _form(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "name": "sum",
        "title": "Sum",
        "source": "FILE",
        "file": upload(sample_zip("sum")),
        "description": "",
        "quantum_backend": "NONE",
        "memory_mb": 512,
        "cpus": "1",
        "timeout_seconds": 120,
        "plan_free": "on",
        "version": "",
    }
    values.update(overrides)
    return values


def test_empty_list_says_what_to_do_next(client_for):
    page = client_for.get("/services/").content.decode()
    assert "You have no services yet" in page
    assert "/templates/template.zip" in page
    assert 'href="/services/create/"' in page


def test_list_requires_login():
    response = Client().get("/services/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_quantum_backends_need_a_stored_token(client_for, user):
    page = client_for.get("/services/create/").content.decode()
    assert 'value="IBM" disabled' in page
    assert 'value="DWAVE" disabled' in page
    assert "/settings/providers/" in page
    provider_token_set(user=user, provider="IBM", value="ibm-token-0123456789")
    page = client_for.get("/services/create/").content.decode()
    assert 'value="IBM" disabled' not in page
    assert 'value="DWAVE" disabled' in page


def test_create_service_form_starts_the_build_and_shows_the_log_poller(client_for, user):
    response = client_for.post("/services/create/", _form(description="**Sums** numbers"))
    service = Service.objects.get(owner=user, name="sum")
    assert response.status_code == 302
    assert response["Location"] == f"/services/{service.pk}/"
    assert (service.memory_mb, service.timeout_seconds) == (512, 120)
    page = client_for.get(response["Location"]).content.decode()
    assert "<strong>Sums</strong> numbers" in page
    assert 'data-status="PENDING"' in page
    assert "log-poller" in page  # the log keeps polling until the build ends
    assert "No callable version yet" in page
    assert 'data-testid="publish" aria-disabled="true"' in page  # the publish flow waits for a READY build


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"file": upload(make_zip({"../evil.py": b"x"}))}, "file", "upload:zip-slip"),
        ({"file": upload(make_zip({"src/program.py": b"x = 1\n"}))}, "file", "upload:no-run"),
        ({"api_spec": upload(b"openapi: 3.0.3\n", "spec.yml")}, "api_spec", "spec:invalid"),
        ({"name": "Not A Slug"}, "name", "service:bad-name"),
        ({"memory_mb": 10**7}, None, "service:bad-resources"),
        ({"source": "URL", "external_url": "ftp://example.org/"}, "external_url", "service:bad-url"),
    ],
    ids=["zip slip", "no run", "invalid spec", "bad name", "too much memory", "bad url"],
)
def test_form_errors_name_the_problem(client_for, overrides, field, code):
    response = client_for.post("/services/create/", _form(**overrides))
    assert response.status_code == 200
    form = response.context["form"]
    errors = form.errors.get(field or "__all__")
    assert errors, form.errors
    assert code in " ".join(errors)
    assert code in response.content.decode()
    assert not Service.objects.exists()


def test_upload_beyond_the_limit_is_refused_in_the_form(client_for, settings):
    import os

    settings.PLANQK_MAX_UPLOAD_MB = 1
    response = client_for.post("/services/create/", _form(file=upload(make_zip({"blob": os.urandom(8 * 1024 * 1024)}))))
    assert response.status_code == 200
    assert "upload:too-large" in response.content.decode()
    assert "larger than 1 MB" in response.content.decode()
    assert not Service.objects.exists()


def test_build_log_and_status_polls_stop_with_286_at_a_final_state(client_for, user):
    service = services.service_create(owner=user, name="sum", archive=sample_zip("sum"))
    version = service.versions.get()
    logs = f"/services/{service.pk}/versions/{version.pk}/logs/"
    status = f"/services/{service.pk}/versions/{version.pk}/status/"
    polling = client_for.get(logs, {"after": 0}, HTTP_HX_REQUEST="true")
    assert polling.status_code == 200
    assert "log-poller" in polling.content.decode()
    assert client_for.get(status, HTTP_HX_REQUEST="true").status_code == 200

    services.service_version_cancel(version=version)
    stopped = client_for.get(logs, {"after": 0}, HTTP_HX_REQUEST="true")
    assert stopped.status_code == 286
    assert "log-poller" not in stopped.content.decode()
    assert stopped["HX-Refresh"] == "true"
    final = client_for.get(status, HTTP_HX_REQUEST="true")
    assert final.status_code == 286
    assert 'data-status="CANCELLED"' in final.content.decode()
    page = client_for.get(f"/services/{service.pk}/versions/{version.pk}/").content.decode()
    assert "log-poller" not in page
    assert "Retry build" in page


def test_another_users_service_is_404_in_the_pages(client_for):
    stranger = make_provider()
    theirs = services.service_create(owner=stranger, name="theirs", archive=sample_zip("sum"))
    version = theirs.versions.get()
    base = f"/services/{theirs.pk}"
    for path in (
        "/",
        "/edit/",
        "/delete/",
        "/versions/new/",
        f"/versions/{version.pk}/",
        f"/versions/{version.pk}/logs/",
    ):
        assert client_for.get(base + path).status_code == 404, path
    for path in ("/delete/", "/publish/", "/publish-internal/", "/unpublish/", f"/versions/{version.pk}/cancel/"):
        assert client_for.post(base + path).status_code == 404, path
    version.refresh_from_db()
    assert version.status == BuildStatus.PENDING
    assert Service.objects.filter(pk=theirs.pk).exists()


def test_publish_refused_without_ready_version_shows_why(client_for, user):
    service = services.service_create(owner=user, name="sum", archive=sample_zip("sum"))
    response = client_for.post(f"/services/{service.pk}/publish/", follow=True)
    assert "Publishing needs a version whose build is READY" in response.content.decode()
    service.refresh_from_db()
    assert service.lifecycle == Lifecycle.CREATED


def test_lifecycle_buttons_and_endpoint_of_a_url_service(client_for, user):
    service = services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")
    page = client_for.get(f"/services/{service.pk}/").content.decode()
    assert f"/gateway/{user.uuid}/remote/1.0.0/" in page
    client_for.post(f"/services/{service.pk}/publish-internal/")
    service.refresh_from_db()
    assert service.lifecycle == Lifecycle.ACCESSIBLE
    client_for.post(f"/services/{service.pk}/publish/")
    service.refresh_from_db()
    assert service.lifecycle == Lifecycle.PUBLISHED
    client_for.post(f"/services/{service.pk}/unpublish/")
    service.refresh_from_db()
    assert service.lifecycle == Lifecycle.CREATED


def test_delete_asks_for_confirmation_and_is_refused_while_subscribed(client_for, user):
    from applications.services import application_create, subscription_create

    service = services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")
    confirm = client_for.get(f"/services/{service.pk}/delete/")
    assert "cannot be undone" in confirm.content.decode()
    assert Service.objects.filter(pk=service.pk).exists()  # asking deletes nothing

    service = services.service_publish_internal(service=service)
    application = application_create(owner=user, name="app").application
    subscription_create(application=application, service=service, plan=service.plans.get())
    refused = client_for.post(f"/services/{service.pk}/delete/", follow=True)
    assert "still active" in refused.content.decode()
    assert Service.objects.filter(pk=service.pk, deleted_at__isnull=True).exists()

    other = services.service_create(owner=user, name="unused", external_url="https://quantum.example.org/y/")
    done = client_for.post(f"/services/{other.pk}/delete/", follow=True)
    assert "Service unused deleted." in done.content.decode()
    assert not Service.objects.filter(pk=other.pk).exists()


def test_description_markdown_is_rendered_safely(client_for, user):
    service = services.service_create(
        owner=user,
        name="remote",
        external_url="https://quantum.example.org/x/",
        description=(
            '# Title\n\n<script>alert("x")</script>\n\n[click](javascript:alert(1)) <img src=x onerror="alert(1)">'
        ),
    )
    page = client_for.get(f"/services/{service.pk}/").content.decode()
    section = page.split('data-testid="description"', 1)[1].split("</section>", 1)[0]
    assert "<h1>Title</h1>" in section
    assert "<script" not in section
    assert "javascript:" not in section
    assert "onerror" not in section


def test_new_version_form_uploads_and_shows_the_version_page(client_for, user):
    service = services.service_create(owner=user, name="sum", archive=sample_zip("sum"))
    form = client_for.get(f"/services/{service.pk}/versions/new/").content.decode()
    assert 'placeholder="1.0.1"' in form
    duplicate = client_for.post(
        f"/services/{service.pk}/versions/new/", {"file": upload(sample_zip("sum")), "version": "1.0.0"}
    )
    assert "version:duplicate" in duplicate.content.decode()
    response = client_for.post(f"/services/{service.pk}/versions/new/", {"file": upload(sample_zip("sum"))})
    version = service.versions.get(version="1.0.1")
    assert response["Location"] == f"/services/{service.pk}/versions/{version.pk}/"
    page = client_for.get(response["Location"]).content.decode()
    assert "Build of 1.0.1" in page


def test_edit_changes_properties_but_not_the_name(client_for, user, settings):
    service = services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")
    url = f"/services/{service.pk}/edit/"
    values = {"title": "Remote", "description": "New *text*", "quantum_backend": "NONE", "cpus": "2"}
    too_long = client_for.post(
        url, {**values, "memory_mb": settings.PLANQK_JOB_MAX_MEMORY_MB * 2, "timeout_seconds": 60}
    )
    assert "service:bad-resources" in too_long.content.decode()
    client_for.post(url, {**values, "memory_mb": 2048, "timeout_seconds": 60})
    service.refresh_from_db()
    assert (service.title, service.memory_mb, service.timeout_seconds, service.name) == ("Remote", 2048, 60, "remote")
