"""REST API for the CLI and the marketplace: applications (secret once) and subscriptions."""

import base64

import pytest

from applications.models import Application, Subscription
from tests.applications.conftest import make_service
from tests.conftest import api_client_for, make_user

pytestmark = pytest.mark.django_db


def test_create_returns_the_secret_once_and_it_works(api_client, client):
    response = api_client.post(
        "/api/v1/applications/", {"name": "cli app", "description": "from a script"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "cli app"
    assert body["token_endpoint"] == "http://testserver/gateway/token"
    assert base64.b64decode(body["basic_auth"]).decode() == f"{body['consumer_key']}:{body['consumer_secret']}"
    token = client.post(
        "/gateway/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {body['basic_auth']}"
    )
    assert token.status_code == 200

    listed = api_client.get("/api/v1/applications/").json()
    assert listed["count"] == 1
    assert "consumer_secret" not in listed["results"][0]
    assert listed["results"][0]["consumer_key"] == body["consumer_key"]
    one = api_client.get(f"/api/v1/applications/{body['id']}/").json()
    assert "consumer_secret" not in one


def test_create_validation_errors_are_clear(api_client):
    assert api_client.post("/api/v1/applications/", {}, format="json").json()["code"] == "invalid"
    api_client.post("/api/v1/applications/", {"name": "twice"}, format="json")
    again = api_client.post("/api/v1/applications/", {"name": "twice"}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "application:name-taken"
    blank = api_client.post("/api/v1/applications/", {"name": "   "}, format="json")
    assert blank.status_code == 400


def test_regenerate_and_delete(api_client, client):
    created = api_client.post("/api/v1/applications/", {"name": "rotating"}, format="json").json()
    regenerated = api_client.post(f"/api/v1/applications/{created['id']}/regenerate-secret").json()
    assert regenerated["consumer_secret"] != created["consumer_secret"]
    assert regenerated["consumer_key"] == created["consumer_key"]
    assert api_client.delete(f"/api/v1/applications/{created['id']}/").status_code == 204
    assert api_client.get(f"/api/v1/applications/{created['id']}/").status_code == 404
    assert api_client.get("/api/v1/applications/").json()["count"] == 0
    token = client.post(
        "/gateway/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {regenerated['basic_auth']}"
    )
    assert token.status_code == 401
    # Kept for billing, hidden from every list; the name can be used again.
    assert Application.objects.filter(pk=created["id"], deleted_at__isnull=False).exists()
    assert api_client.post("/api/v1/applications/", {"name": "rotating"}, format="json").status_code == 201


def test_other_users_applications_are_404(api_client):
    theirs = api_client_for(make_user("eve@example.com"))
    created = theirs.post("/api/v1/applications/", {"name": "eve's"}, format="json").json()
    assert api_client.get(f"/api/v1/applications/{created['id']}/").status_code == 404
    assert api_client.delete(f"/api/v1/applications/{created['id']}/").status_code == 404
    assert api_client.get(f"/api/v1/applications/{created['id']}/subscriptions/").status_code == 404
    assert api_client.get("/api/v1/applications/").json()["count"] == 0


def test_subscribe_list_and_unsubscribe(api_client, sum_service):
    app_id = api_client.post("/api/v1/applications/", {"name": "subscriber"}, format="json").json()["id"]
    url = f"/api/v1/applications/{app_id}/subscriptions/"
    response = api_client.post(
        url, {"service_id": str(sum_service.service.id), "plan_id": sum_service.plan.id}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["service_name"] == "sum"
    assert body["plan_kind"] == "FREE"
    assert body["requests_per_minute"] == sum_service.plan.requests_per_minute
    assert body["endpoint_url"] == f"http://testserver{sum_service.path}"
    assert body["ended_at"] is None

    again = api_client.post(
        url, {"service_id": str(sum_service.service.id), "plan_id": sum_service.plan.id}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "subscription:exists"

    assert api_client.get(url).json()["count"] == 1
    assert api_client.delete(f"{url}{body['id']}/").status_code == 204
    assert api_client.get(url).json()["count"] == 0
    ended = api_client.get(f"{url}{body['id']}/").json()
    assert ended["ended_at"] is not None
    # Subscribing again after unsubscribing is allowed.
    resubscribed = api_client.post(
        url, {"service_id": str(sum_service.service.id), "plan_id": sum_service.plan.id}, format="json"
    )
    assert resubscribed.status_code == 201


def test_plan_terms_are_copied_into_the_subscription(api_client, sum_service):
    app_id = api_client.post("/api/v1/applications/", {"name": "terms"}, format="json").json()["id"]
    url = f"/api/v1/applications/{app_id}/subscriptions/"
    created = api_client.post(
        url, {"service_id": str(sum_service.service.id), "plan_id": sum_service.plan.id}, format="json"
    ).json()
    sum_service.plan.requests_per_minute = 1
    sum_service.plan.save()
    subscription = Subscription.objects.get(pk=created["id"])
    assert subscription.requests_per_minute == 120
    assert subscription.plan_kind == "FREE"


def test_subscription_rules(api_client, user, provider):
    app_id = api_client.post("/api/v1/applications/", {"name": "rules"}, format="json").json()["id"]
    url = f"/api/v1/applications/{app_id}/subscriptions/"

    def subscribe(target):
        return api_client.post(url, {"service_id": str(target.service.id), "plan_id": target.plan.id}, format="json")

    internal = make_service(provider, name="internal", lifecycle="ACCESSIBLE", sample=None)
    response = subscribe(internal)
    assert response.status_code == 404  # someone else's internal service is not offered at all
    draft = make_service(provider, name="draft", lifecycle="CREATED", sample=None)
    assert subscribe(draft).status_code == 404

    own = make_service(user, name="mine", lifecycle="ACCESSIBLE", sample=None)
    assert subscribe(own).status_code == 201

    paid = make_service(provider, name="paid", sample=None, plan_kind="PER_EXECUTION", price_cents=50)
    response = subscribe(paid)
    assert response.status_code == 402
    assert response.json()["code"] == "subscription:card-required"
    from payments.testing import add_test_card

    add_test_card(user)
    assert subscribe(paid).status_code == 201

    other = make_service(provider, name="other", sample=None)
    mismatch = api_client.post(url, {"service_id": str(other.service.id), "plan_id": paid.plan.id}, format="json")
    assert mismatch.status_code == 400
    assert mismatch.json()["code"] == "subscription:plan-mismatch"
    other.plan.is_active = False
    other.plan.save()
    response = subscribe(other)
    assert response.status_code == 400
    assert response.json()["code"] == "subscription:plan-inactive"
    bad = api_client.post(url, {"service_id": "nope", "plan_id": "x"}, format="json")
    assert bad.status_code == 400


def test_subscription_service_functions_enforce_the_rules(user, provider):
    from applications.services import application_create, subscription_create
    from planqk_portal.errors import ApplicationError

    application = application_create(owner=user, name="direct").application
    internal = make_service(provider, name="internal", lifecycle="ACCESSIBLE", sample=None)
    with pytest.raises(ApplicationError) as raised:
        subscription_create(application=application, service=internal.service, plan=internal.plan)
    assert raised.value.status == 403
    own_draft = make_service(user, name="draft", lifecycle="CREATED", sample=None)
    with pytest.raises(ApplicationError) as raised:
        subscription_create(application=application, service=own_draft.service, plan=own_draft.plan)
    assert raised.value.code == "subscription:not-published"


def test_api_needs_a_token(client):
    assert client.get("/api/v1/applications/").status_code in (401, 403)
