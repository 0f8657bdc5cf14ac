from __future__ import annotations

import pytest

from tests.payments.fake_stripe import API_KEY, start_fake_stripe


@pytest.fixture
def fake_stripe(settings):
    """The Stripe gateway configured against a local fake Stripe (STRIPE_API_BASE)."""
    fake, server = start_fake_stripe()
    settings.PLANQK_PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_PUBLISHABLE_KEY = ""
    settings.STRIPE_API_BASE = fake.url
    yield fake
    server.shutdown()
    server.server_close()
