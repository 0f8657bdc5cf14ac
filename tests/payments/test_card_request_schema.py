"""POST /api/v1/payments/cards/ answers as its schema says, on either gateway.

The schema's ``oneOf`` offers the ways in the configured gateway takes (the simulator: a
PaymentMethod id or a test card number with its expiry and CVC; Stripe: a PaymentMethod id or a
confirmed SetupIntent), and a PaymentMethod id that names nothing is 404 like every object named
by id that is not there (it was 400, "invalid input", for a well-formed request).
"""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

from payments.models import Card
from tests.conftest import api_client_for, make_user

pytestmark = pytest.mark.django_db
URL = "/api/v1/payments/cards/"


def _ways_in() -> list[list[str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]["CardAddRequest"]
    return [branch["required"] for branch in schema["oneOf"]]


def test_the_simulators_schema_offers_a_card_number_with_its_expiry_and_cvc():
    assert _ways_in() == [["payment_method"], ["number", "exp_month", "exp_year", "cvc"]]


def test_stripes_schema_offers_a_setup_intent_and_no_card_number(fake_stripe):
    assert _ways_in() == [["payment_method"], ["setup_intent"]]
    # What the schema leaves out, the gateway refuses (400), and nothing is saved.
    user = make_user("stripe-schema@example.com")
    refused = api_client_for(user).post(
        URL, {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}, format="json"
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "payments:card-number-not-accepted")
    assert not Card.objects.filter(user=user).exists()


@pytest.mark.parametrize("gateway", ["simulator", "stripe"])
def test_a_payment_method_that_does_not_exist_is_404(gateway, request):
    if gateway == "stripe":
        request.getfixturevalue("fake_stripe")
    user = make_user(f"{gateway}-missing@example.com")
    response = api_client_for(user).post(URL, {"payment_method": "pm_nothing_here"}, format="json")
    assert response.status_code == 404, response.json()
    assert response.json()["code"] in ("payments:no-such-payment-method", "payments:resource_missing")
    assert "pm_nothing_here" in response.json()["detail"]
    assert not Card.objects.filter(user=user).exists()


def test_a_setup_intent_is_an_id_of_stripes_form():
    user = make_user("seti@example.com")
    response = api_client_for(user).post(URL, {"setup_intent": "pi_123"}, format="json")
    assert response.status_code == 400
    assert "SetupIntent" in response.json()["detail"]
