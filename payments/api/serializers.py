from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from planqk_portal.api_fields import StrictCharField, StrictIntegerField

from ..models import Card, Invoice, InvoiceLine


class CardSerializer(serializers.ModelSerializer):
    is_expired = serializers.BooleanField(read_only=True)

    class Meta:
        model = Card
        fields = ("id", "brand", "last4", "exp_month", "exp_year", "is_expired", "created_at")


class CardAddSerializer(serializers.Serializer):
    """One of: a PaymentMethod id, a confirmed SetupIntent id, or (simulator only) test card data."""

    @property
    def schema_constraints(self) -> dict[str, Any]:
        """The request schema says what validate() and the configured gateway refuse
        (planqk_portal.api_schema): exactly one way in, the gateway's two (a PaymentMethod id and,
        with Stripe, a SetupIntent; in the simulator a test card number, with its expiry and CVC)."""
        from payments.gateways import get_gateway

        ways = {"payment_method": ["payment_method"]}
        if get_gateway().takes_card_numbers:
            ways["number"] = ["number", "exp_month", "exp_year", "cvc"]
        else:
            ways["setup_intent"] = ["setup_intent"]
        others = {"payment_method", "setup_intent", "number"}
        return {
            "oneOf": [
                {"required": required, "not": {"anyOf": [{"required": [o]} for o in sorted(others - {way})]}}
                for way, required in ways.items()
            ]
        }

    payment_method = StrictCharField(required=False, max_length=255, help_text="e.g. pm_card_visa")
    setup_intent = StrictCharField(
        required=False,
        max_length=255,
        validators=[RegexValidator(r"^\s*seti_", "Give the id of a confirmed SetupIntent (seti_…).")],
        help_text="Stripe gateway only: a SetupIntent confirmed by Stripe.js.",
    )
    number = StrictCharField(required=False, max_length=23, help_text="Simulator only: a Stripe test card number.")
    exp_month = StrictIntegerField(required=False, min_value=1, max_value=12)
    exp_year = StrictIntegerField(required=False, min_value=2000, max_value=2200)
    cvc = StrictCharField(required=False, max_length=4)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [key for key in ("payment_method", "setup_intent", "number") if attrs.get(key)]
        if len(given) != 1:
            raise serializers.ValidationError("Give exactly one of payment_method, setup_intent or number.")
        if given == ["number"]:
            missing = [key for key in ("exp_month", "exp_year", "cvc") if attrs.get(key) in (None, "")]
            if missing:
                raise serializers.ValidationError(f"With a card number, also give {', '.join(missing)}.")
        return attrs


class SetupIntentSerializer(serializers.Serializer):
    id = serializers.CharField()
    client_secret = serializers.CharField()


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ("description", "quantity", "unit_price_cents", "amount_cents")


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)
    service_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = Invoice
        fields = (
            "id",
            "number",
            "service_id",
            "service_name",
            "application_name",
            "plan_name",
            "plan_kind",
            "period_start",
            "period_end",
            "executions",
            "amount_cents",
            "currency",
            "status",
            "failure_message",
            "created_at",
            "paid_at",
            "lines",
        )


class UsageLineSerializer(serializers.Serializer):
    """One subscription in the period."""

    subscription_id = serializers.UUIDField()
    application_id = serializers.UUIDField()
    application_name = serializers.CharField()
    service_id = serializers.UUIDField()
    service_name = serializers.CharField()
    plan_name = serializers.CharField()
    plan_kind = serializers.ChoiceField(choices=["FREE", "PER_EXECUTION", "MONTHLY"])
    unit_price_cents = serializers.IntegerField(help_text="Per execution or per month, by plan_kind.")
    executions = serializers.IntegerField()
    billable_executions = serializers.IntegerField(help_text="Executions recorded with a price.")
    run_seconds = serializers.FloatField()
    usage_cents = serializers.IntegerField(help_text="The prices of the period's usage records.")
    flat_cents = serializers.IntegerField(help_text="A monthly plan's flat price for the period, else 0.")
    total_cents = serializers.IntegerField()


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField(help_text="UTC.")
    executions = serializers.IntegerField()
    run_seconds = serializers.FloatField()
    cents = serializers.IntegerField(help_text="What the day's executions cost (flat prices are not per day).")


class UsageReportSerializer(serializers.Serializer):
    """A billing period (calendar month, UTC) from the usage records, as the usage and earnings pages show it."""

    role = serializers.ChoiceField(choices=["subscriber", "provider"])
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField(help_text="Exclusive.")
    currency = serializers.CharField()
    executions = serializers.IntegerField()
    run_seconds = serializers.FloatField()
    total_cents = serializers.IntegerField()
    subscriptions = UsageLineSerializer(many=True)
    days = UsageDaySerializer(many=True)
