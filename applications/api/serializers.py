"""Input and output shapes of the applications API (used by the CLI and the marketplace)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from applications import services
from applications.models import Application, Subscription
from applications.services import DESCRIPTION_MAX, NAME_MAX
from planqk_portal.api_fields import StrictCharField, StrictUUIDField
from services.selectors import service_version_latest_callable


class ApplicationSerializer(serializers.ModelSerializer):
    consumer_key = serializers.CharField(read_only=True)
    token_endpoint = serializers.SerializerMethodField()
    active_subscriptions = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = ("id", "name", "description", "consumer_key", "token_endpoint", "active_subscriptions", "created_at")
        read_only_fields = fields

    def get_token_endpoint(self, application: Application) -> str:
        return services.token_endpoint_url(self.context.get("request"))

    def get_active_subscriptions(self, application: Application) -> int:
        annotated = getattr(application, "active_subscriptions", None)
        if annotated is not None:
            return annotated
        return application.subscriptions.filter(ended_at__isnull=True).count()


class ApplicationCreatedSerializer(ApplicationSerializer):
    """The new application with its secret: the only time the secret is ever returned."""

    consumer_secret = serializers.CharField(read_only=True, help_text="Shown once; store it now.")
    basic_auth = serializers.CharField(read_only=True, help_text="base64(consumer_key:consumer_secret)")

    class Meta(ApplicationSerializer.Meta):
        fields = (*ApplicationSerializer.Meta.fields, "consumer_secret", "basic_auth")
        read_only_fields = fields


class ApplicationInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=NAME_MAX)
    description = StrictCharField(max_length=DESCRIPTION_MAX, required=False, allow_blank=True, default="")


class SubscriptionSerializer(serializers.ModelSerializer):
    application_id = serializers.UUIDField(read_only=True)
    service_id = serializers.UUIDField(read_only=True)
    service_name = serializers.CharField(source="service.name", read_only=True)
    service_title = serializers.CharField(source="service.display_name", read_only=True)
    plan_id = serializers.IntegerField(read_only=True)
    plan_name = serializers.CharField(source="plan.name", read_only=True)
    endpoint_url = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = (
            "id",
            "application_id",
            "service_id",
            "service_name",
            "service_title",
            "plan_id",
            "plan_name",
            "plan_kind",
            "price_cents",
            "currency",
            "requests_per_minute",
            "max_concurrent",
            "endpoint_url",
            "created_at",
            "ended_at",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_endpoint_url(self, subscription: Subscription) -> Any:
        version = service_version_latest_callable(service=subscription.service)
        if version is None:
            return None
        return services.service_endpoint_url(
            service=subscription.service, version=version, request=self.context.get("request")
        )


class SubscriptionInputSerializer(serializers.Serializer):
    service_id = StrictUUIDField()
    plan_id = serializers.IntegerField()
