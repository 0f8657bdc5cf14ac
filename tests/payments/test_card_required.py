"""Creating a service needs a valid card: refused with a clear message and a link to add one."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from payments.models import Card
from payments.testing import add_test_card
from planqk_portal.errors import ApplicationError
from planqk_samples import sample_zip
from services import services
from services.models import Service
from tests.conftest import api_client_for, login, make_user


@pytest.fixture
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.django_db
def test_service_create_without_a_card_is_refused(user, private_media):
    with pytest.raises(ApplicationError) as exc:
        services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")
    assert exc.value.status == 402
    assert exc.value.code == "payments:card-required"
    assert "/settings/payments/" in exc.value.message
    assert not Service.objects.exists()

    card = add_test_card(user)
    Card.objects.filter(pk=card.pk).update(exp_year=2020)  # an expired card does not count
    with pytest.raises(ApplicationError):
        services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")

    add_test_card(user)
    assert services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")


@pytest.mark.django_db
def test_the_api_and_so_the_cli_get_the_message_and_where_to_add_a_card(user, private_media):
    api = api_client_for(user)
    upload = SimpleUploadedFile("user_code.zip", sample_zip("sum"), content_type="application/zip")
    response = api.post("/api/v1/services/", {"name": "sum", "file": upload}, format="multipart")
    assert response.status_code == 402
    body = response.json()
    assert body["code"] == "payments:card-required"
    assert body["add_card_url"] == "/settings/payments/"
    assert "4242 4242 4242 4242" in body["detail"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_create_service_page_links_to_payments_and_comes_back(browser_page, live_server, tmp_path, private_media):
    user = make_user("no-card@example.com")
    archive = tmp_path / "user_code.zip"
    archive.write_bytes(sample_zip("sum"))
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/services/create/")
    page.wait_for_selector("[data-testid=card-required]")
    page.fill("input[name=name]", "sum")
    page.set_input_files("input[name=file]", str(archive))
    page.click("[data-testid=submit]")
    page.wait_for_selector("[data-testid=form-error]")
    assert "needs a valid card" in page.locator("[data-testid=form-error]").inner_text()
    assert not Service.objects.exists()

    page.click("[data-testid=add-card-link]")
    page.fill("input[name=number]", "4242 4242 4242 4242")
    page.fill("input[name=expiry]", "12 / 34")
    page.fill("input[name=cvc]", "123")
    page.click("[data-testid=add-card-submit]")
    page.wait_for_url("**/services/create/")  # back where the user started
    assert page.locator("[data-testid=card-required]").count() == 0
