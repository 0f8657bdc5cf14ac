"""The services REST API (/api/v1/services/) as the CLI uses it, without building."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import provider_token_set
from planqk_portal import reaper
from planqk_portal.logs import ChunkedLogWriter
from planqk_samples import sample_zip
from services import selectors, services
from services.models import BuildLogChunk, BuildStatus, Lifecycle, PlanKind, Service, ServiceVersion
from tests.conftest import api_client_for, token_for

from .helpers import make_zip, sample_upload, upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]

SERVICE_KEYS = {
    "id", "name", "title", "description", "quantum_backend", "lifecycle", "source", "external_url", "memory_mb",
    "cpus", "timeout_seconds", "retry_on_host_loss", "queue", "created_at", "latest_version", "published_version",
    "gateway_url",
}  # fmt: skip
VERSION_KEYS = {
    "id", "version", "status", "build_error", "build_error_code", "created_at", "build_started_at",
    "build_ended_at", "is_callable", "generation",
}  # fmt: skip


def create(client: APIClient, name: str = "sum", sample: str = "sum", **fields: object):
    return client.post("/api/v1/services/", {"name": name, "file": sample_upload(sample), **fields}, format="multipart")


def create_url_service(client: APIClient, name: str = "remote", url: str = "https://quantum.example.org/svc/"):
    response = client.post("/api/v1/services/", {"name": name, "external_url": url}, format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_service_from_the_sample_zip(api_client, user):
    response = create(api_client, title="Sum", description="Adds *numbers*.")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == SERVICE_KEYS
    assert body["name"] == "sum"
    assert body["lifecycle"] == "CREATED"
    assert body["source"] == "FILE"
    assert body["latest_version"]["version"] == "1.0.0"
    assert body["latest_version"]["status"] == "PENDING"
    assert body["published_version"] is None
    assert body["gateway_url"] is None  # nothing callable before the build is READY
    service = Service.objects.get(pk=body["id"])
    assert [plan.kind for plan in service.plans.all()] == [PlanKind.FREE]
    version = service.versions.get()
    assert version.archive.name.endswith(f"{version.id}.zip")
    assert "openapi: 3" in version.api_spec  # the archive's own openapi-spec.yml


def test_resources_default_from_settings_and_are_bounded(api_client, settings):
    body = create(api_client).json()
    assert body["memory_mb"] == settings.PLANQK_JOB_DEFAULT_MEMORY_MB
    assert body["cpus"] == settings.PLANQK_JOB_DEFAULT_CPUS
    assert body["timeout_seconds"] == settings.PLANQK_JOB_DEFAULT_TIMEOUT
    too_much = create(api_client, name="big", memory_mb=settings.PLANQK_JOB_MAX_MEMORY_MB + 1)
    assert too_much.status_code == 400
    assert too_much.json()["code"] == "service:bad-resources"
    assert str(settings.PLANQK_JOB_MAX_MEMORY_MB) in too_much.json()["detail"]
    custom = create(api_client, name="custom", memory_mb=256, cpus=0.5, timeout_seconds=60).json()
    assert (custom["memory_mb"], custom["cpus"], custom["timeout_seconds"]) == (256, 0.5, 60)


def test_api_spec_file_overrides_and_invalid_spec_is_refused(api_client):
    spec = b'openapi: 3.0.3\ninfo: {title: Mine, version: "2"}\npaths: {}\n'
    good = create(api_client, api_spec=upload(spec, "openapi-spec.yml"))
    assert good.status_code == 201
    assert ServiceVersion.objects.get(service_id=good.json()["id"]).api_spec == spec.decode()

    bad = create(api_client, name="bad-spec", api_spec=upload(b"openapi: 3.0.3\ninfo: {}\n", "openapi-spec.yml"))
    assert bad.status_code == 400
    assert bad.json()["code"] == "spec:invalid"
    detail = bad.json()["detail"]
    # The reason and where, in the validator's words (its quote style varies between versions),
    # without the validator's dump of the schema and of the whole document.
    assert re.fullmatch(
        r"""The API spec is not valid OpenAPI: at \(top level\): ["']paths["'] is a required property""", detail
    )
    assert not Service.objects.filter(name="bad-spec").exists()


def test_without_any_spec_the_template_default_is_used(api_client):
    response = create_url_service(api_client, name="no-spec")
    spec = ServiceVersion.objects.get(service_id=response["id"]).api_spec
    document = yaml.safe_load(spec)  # the template's spec starts with comments for the provider
    assert str(document["openapi"]).startswith("3.")
    assert document["info"]["title"] == "no-spec"  # titled for the service


def test_hostile_zip_via_api_names_the_problem(api_client):
    response = api_client.post(
        "/api/v1/services/",
        {"name": "evil", "file": upload(make_zip({"../../etc/cron.d/x": b"* * * * * root sh"}))},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "upload:zip-slip"
    assert "outside" in response.json()["detail"]


def test_too_large_upload_is_413(api_client, settings):
    settings.PLANQK_MAX_UPLOAD_MB = 1
    import os

    data = make_zip({"src/blob.bin": os.urandom(1100 * 1024)})
    response = api_client.post("/api/v1/services/", {"name": "big", "file": upload(data)}, format="multipart")
    assert response.status_code == 413
    assert response.json()["code"] == "upload:too-large"
    assert "1 MB" in response.json()["detail"]


def test_upload_far_beyond_the_limit_is_not_even_stored(api_client, settings):
    settings.PLANQK_MAX_UPLOAD_MB = 1
    import os

    data = make_zip({"src/blob.bin": os.urandom(16 * 1024 * 1024)})
    response = api_client.post("/api/v1/services/", {"name": "huge", "file": upload(data)}, format="multipart")
    assert response.status_code == 413
    assert response.json()["code"] == "upload:too-large"
    assert not Service.objects.filter(name="huge").exists()


def test_missing_upload_bad_name_and_taken_name(api_client):
    missing = api_client.post("/api/v1/services/", {"name": "x"}, format="multipart")
    assert missing.status_code == 400
    assert missing.json()["code"] == "upload:missing"

    bad = create(api_client, name="My Service")
    assert bad.status_code == 400
    assert bad.json()["code"] == "service:bad-name"
    assert "'my-service'" in bad.json()["detail"]

    assert create(api_client, name="taken").status_code == 201
    again = create(api_client, name="taken")
    assert again.status_code == 409
    assert again.json()["code"] == "service:name-taken"


def test_ibm_backend_needs_the_owners_ibm_token(api_client, user):
    refused = create(api_client, name="bell", sample="qiskit_bell", quantum_backend="IBM")
    assert refused.status_code == 400
    assert refused.json()["code"] == "service:provider-token-missing"
    assert "/settings/providers/" in refused.json()["detail"]
    provider_token_set(user=user, provider="IBM", value="ibm-token-0123456789")
    accepted = create(api_client, name="bell", sample="qiskit_bell", quantum_backend="IBM")
    assert accepted.status_code == 201
    assert accepted.json()["quantum_backend"] == "IBM"
    unknown = create(api_client, name="other", quantum_backend="RIGETTI")
    assert unknown.json()["code"] == "service:bad-backend"


def test_list_is_own_paginated_and_filters_by_name(api_client, other_user):
    create(api_client, name="mine")
    create(api_client, name="also-mine")
    create(api_client_for(other_user), name="theirs")
    body = api_client.get("/api/v1/services/").json()
    assert {"count", "next", "previous", "results"} <= set(body)
    assert sorted(item["name"] for item in body["results"]) == ["also-mine", "mine"]
    named = api_client.get("/api/v1/services/", {"name": "mine"}).json()["results"]
    assert [item["name"] for item in named] == ["mine"]


def test_another_users_service_is_404_everywhere(api_client, other_user):
    theirs = create(api_client_for(other_user), name="theirs").json()
    version_id = theirs["latest_version"]["id"]
    base = f"/api/v1/services/{theirs['id']}"
    for method, path in [
        ("get", f"{base}/"),
        ("delete", f"{base}/"),
        ("get", f"{base}/versions/"),
        ("post", f"{base}/versions/"),
        ("get", f"{base}/versions/{version_id}/"),
        ("get", f"{base}/versions/{version_id}/logs"),
        ("post", f"{base}/versions/{version_id}/cancel"),
        ("post", f"{base}/versions/{version_id}/retry"),
        ("post", f"{base}/publish-internal"),
        ("post", f"{base}/publish"),
        ("post", f"{base}/unpublish"),
    ]:
        response = getattr(api_client, method)(path)
        assert response.status_code == 404, (method, path, response.content)
        assert response.json()["code"].endswith("not-found")
    assert Service.objects.filter(pk=theirs["id"]).exists()


def test_read_only_token_cannot_create(user):
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token_for(user, scopes=['read'])}")
    assert client.get("/api/v1/services/").status_code == 200
    assert create(client).status_code == 403


def test_new_versions_are_numbered_and_validated(api_client):
    service = create(api_client).json()
    url = f"/api/v1/services/{service['id']}/versions/"

    def upload_version(**fields: object):
        return api_client.post(url, {"file": sample_upload("sum"), **fields}, format="multipart")

    first = upload_version()
    assert first.status_code == 201
    assert set(first.json()) == VERSION_KEYS
    assert first.json()["version"] == "1.0.1"
    assert upload_version(version="2.0.0").json()["version"] == "2.0.0"
    assert upload_version().json()["version"] == "2.0.1"
    duplicate = upload_version(version="2.0.0")
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "version:duplicate"
    invalid = upload_version(version="banana")
    assert invalid.status_code == 400
    assert invalid.json()["code"] == "version:invalid"
    listed = api_client.get(url).json()["results"]
    assert [v["version"] for v in listed] == ["2.0.1", "2.0.0", "1.0.1", "1.0.0"]
    assert api_client.get(f"/api/v1/services/{service['id']}/").json()["latest_version"]["version"] == "2.0.1"


def test_new_version_keeps_the_previous_spec_when_none_is_given(api_client):
    spec = b'openapi: 3.0.3\ninfo: {title: Kept, version: "1"}\npaths: {}\n'
    data = make_zip()  # no openapi-spec.yml inside
    service = api_client.post(
        "/api/v1/services/",
        {"name": "keep", "file": upload(data), "api_spec": upload(spec, "spec.yml")},
        format="multipart",
    ).json()
    new = api_client.post(f"/api/v1/services/{service['id']}/versions/", {"file": upload(data)}, format="multipart")
    assert ServiceVersion.objects.get(pk=new.json()["id"]).api_spec == spec.decode()


def test_publishing_needs_a_ready_version(api_client):
    service = create(api_client).json()
    for action in ("publish-internal", "publish"):
        response = api_client.post(f"/api/v1/services/{service['id']}/{action}")
        assert response.status_code == 409
        assert response.json()["code"] == "service:no-ready-version"
    assert Service.objects.get(pk=service["id"]).lifecycle == Lifecycle.CREATED


def test_lifecycle_of_a_service_imported_from_url(api_client, user):
    service = create_url_service(api_client)
    assert service["source"] == "URL"
    assert service["latest_version"]["status"] == "READY"
    assert service["gateway_url"] == f"http://testserver/gateway/{user.uuid}/remote/1.0.0/"
    base = f"/api/v1/services/{service['id']}"
    assert api_client.post(f"{base}/publish-internal").json()["lifecycle"] == "ACCESSIBLE"
    published = api_client.post(f"{base}/publish").json()
    assert published["lifecycle"] == "PUBLISHED"
    assert published["published_version"]["version"] == "1.0.0"
    assert api_client.post(f"{base}/unpublish").json()["lifecycle"] == "CREATED"
    again = api_client.post(f"{base}/unpublish")
    assert again.status_code == 409
    assert again.json()["code"] == "service:not-published"


def test_endpoint_url_uses_the_configured_gateway(api_client, user, settings):
    settings.PLANQK_GATEWAY_URL = "https://gateway.example.org"
    service = create_url_service(api_client)
    assert service["gateway_url"] == f"https://gateway.example.org/{user.uuid}/remote/1.0.0/"
    obj = Service.objects.get(pk=service["id"])
    assert (
        selectors.service_endpoint_url(service=obj, version="1.2.3")
        == f"https://gateway.example.org/{user.uuid}/remote/1.2.3/"
    )


def _subscribe(owner, service: Service):
    from applications.services import application_create, subscription_create

    application = application_create(owner=owner, name=f"app-{service.name}").application
    return subscription_create(application=application, service=service, plan=service.plans.get())


def test_delete_is_refused_while_subscribed_and_retires_after(api_client, user):
    body = create_url_service(api_client, name="popular")
    service = Service.objects.get(pk=body["id"])
    service = services.service_publish_internal(service=service)
    subscription = _subscribe(user, service)
    refused = api_client.delete(f"/api/v1/services/{service.pk}/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "service:has-subscriptions"
    assert Service.objects.filter(pk=service.pk, deleted_at__isnull=True).exists()

    from applications.services import subscription_end

    subscription_end(subscription=subscription)
    assert api_client.delete(f"/api/v1/services/{service.pk}/").status_code == 204
    # The ended subscription keeps its history; the service is gone for its owner and callers.
    retired = Service.objects.get(pk=service.pk)
    assert retired.deleted_at is not None
    assert retired.published_version is None
    assert not retired.versions.filter(unpublished_at__isnull=True).exists()
    assert api_client.get(f"/api/v1/services/{service.pk}/").status_code == 404
    assert api_client.get("/api/v1/services/", {"name": "popular"}).json()["results"] == []
    # Its name is free again.
    assert create_url_service(api_client, name="popular")["name"] == "popular"


def test_delete_without_subscriptions_removes_everything(api_client):
    body = create(api_client).json()
    assert api_client.delete(f"/api/v1/services/{body['id']}/").status_code == 204
    assert not Service.objects.filter(pk=body["id"]).exists()
    assert not ServiceVersion.objects.filter(service_id=body["id"]).exists()


def test_cancel_a_pending_build_then_retry(api_client):
    body = create(api_client).json()
    version_url = f"/api/v1/services/{body['id']}/versions/{body['latest_version']['id']}"
    version = ServiceVersion.objects.get(pk=body["latest_version"]["id"])
    writer = ChunkedLogWriter(BuildLogChunk, "version", version, max_bytes=10_000)
    writer.line("an earlier attempt")
    writer.flush()

    cancelled = api_client.post(f"{version_url}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    again = api_client.post(f"{version_url}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "build:not-cancellable"

    retried = api_client.post(f"{version_url}/retry")
    assert retried.status_code == 200
    assert retried.json()["status"] == "PENDING"
    assert not BuildLogChunk.objects.filter(version=version).exists()  # a fresh log per attempt
    not_again = api_client.post(f"{version_url}/retry")
    assert not_again.status_code == 409
    assert not_again.json()["code"] == "build:not-retryable"


def test_build_log_endpoint_returns_only_newer_chunks(api_client):
    body = create(api_client).json()
    version = ServiceVersion.objects.get(pk=body["latest_version"]["id"])
    writer = ChunkedLogWriter(BuildLogChunk, "version", version, max_bytes=10_000)
    for text in ("first", "second"):
        writer.line(text)
        writer.flush()
    url = f"/api/v1/services/{body['id']}/versions/{version.pk}/logs"
    everything = api_client.get(url).json()
    assert everything == {
        "chunks": [{"seq": 1, "text": "first\n"}, {"seq": 2, "text": "second\n"}],
        "last": 2,
        "final": False,
    }
    assert api_client.get(url, {"after": 1}).json()["chunks"] == [{"seq": 2, "text": "second\n"}]
    assert api_client.get(url, {"after": 2}).json() == {"chunks": [], "last": 2, "final": False}
    assert api_client.get(url, {"after": "garbage"}).json()["last"] == 2
    services.service_version_cancel(version=version)
    assert api_client.get(url, {"after": 2}).json()["final"] is True


def test_unpublishing_a_version(api_client):
    body = create_url_service(api_client)
    service = Service.objects.get(pk=body["id"])
    second = services.service_version_create(
        service=service, user=service.owner, external_url="https://quantum.example.org/v2/"
    )
    service.refresh_from_db()
    assert service.published_version == second
    assert service.external_url == "https://quantum.example.org/v2/"
    first = service.versions.get(version="1.0.0")
    response = api_client.post(f"/api/v1/services/{service.pk}/versions/{first.pk}/unpublish")
    assert response.status_code == 200
    assert response.json()["is_callable"] is False
    services.service_publish(service=service)
    refused = api_client.post(f"/api/v1/services/{service.pk}/versions/{second.pk}/unpublish")
    assert refused.status_code == 409
    assert refused.json()["code"] == "version:last-callable"


def test_selectors_for_other_apps(user, other_user):
    own = services.service_create(owner=user, name="own", external_url="https://a.example.org/")
    theirs = services.service_create(owner=other_user, name="theirs", external_url="https://b.example.org/")
    theirs = services.service_publish(service=theirs)
    hidden = services.service_create(owner=other_user, name="hidden", external_url="https://c.example.org/")
    assert list(selectors.service_list_usable(user=user)) == [own]
    _subscribe(user, theirs)
    assert set(selectors.service_list_usable(user=user)) == {own, theirs}
    assert hidden not in selectors.service_list_usable(user=user)
    assert selectors.service_version_latest_callable(service=own).version == "1.0.0"
    pending = services.service_create(owner=user, name="pending", archive=sample_zip("sum"))
    assert selectors.service_version_latest_callable(service=pending) is None


def test_reaper_fails_builds_whose_worker_died(api_client, settings):
    assert "services.builds.service_builds_reap" in reaper.registered()
    body = create(api_client).json()
    version = ServiceVersion.objects.get(pk=body["latest_version"]["id"])
    long_ago = timezone.now() - timedelta(seconds=settings.PLANQK_BUILD_TIMEOUT + 600)
    recently = timezone.now() - timedelta(seconds=5)
    ServiceVersion.objects.filter(pk=version.pk).update(status=BuildStatus.BUILDING, build_started_at=recently)
    reaper.run_all()
    version.refresh_from_db()
    assert version.status == BuildStatus.BUILDING  # still within its time
    ServiceVersion.objects.filter(pk=version.pk).update(build_started_at=long_ago)
    reaper.run_all()
    version.refresh_from_db()
    assert version.status == BuildStatus.FAILED
    assert version.build_error_code == "build:platform:lost"
    assert "worker" in version.build_error
    log = api_client.get(f"/api/v1/services/{body['id']}/versions/{version.pk}/logs").json()
    assert log["final"] is True
    assert "Retry the build" in log["chunks"][-1]["text"]
