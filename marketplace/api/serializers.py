from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from applications.services import service_endpoint_url
from planqk_portal.api_fields import QuerySerializer, StrictCharField
from services.models import PricingPlan, QuantumBackend, Service, ServiceVersion

from ..selectors import ORDERINGS, marketplace_plans, marketplace_versions


class MarketplaceQuerySerializer(QuerySerializer):
    """The catalogue's filters; an empty one is refused like any value outside its enum."""

    search = StrictCharField(
        required=False, allow_blank=True, max_length=200, help_text="Words in name or description."
    )
    quantum_backend = serializers.ChoiceField(choices=QuantumBackend.choices, required=False)
    pricing = serializers.ChoiceField(choices=[("free", "free"), ("paid", "paid")], required=False)
    ordering = serializers.ChoiceField(choices=[(key, key) for key in ORDERINGS], required=False, default="newest")


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = PricingPlan
        fields = ("id", "name", "kind", "price_cents", "currency", "requests_per_minute", "max_concurrent")


class VersionSerializer(serializers.ModelSerializer):
    endpoint_url = serializers.SerializerMethodField()

    class Meta:
        model = ServiceVersion
        fields = ("id", "version", "created_at", "endpoint_url")

    def get_endpoint_url(self, obj: ServiceVersion) -> str:
        return service_endpoint_url(service=obj.service, version=obj, request=self.context.get("request"))


class MarketplaceServiceSerializer(serializers.ModelSerializer):
    provider = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()
    plans = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = (
            "id",
            "name",
            "title",
            "description",
            "quantum_backend",
            "provider",
            "created_at",
            "versions",
            "plans",
            "page_url",
        )

    def get_provider(self, obj: Service) -> str:
        owner = obj.owner
        return owner.get_full_name() or owner.email.split("@", 1)[0]

    @extend_schema_field(VersionSerializer(many=True))
    def get_versions(self, obj: Service) -> list[dict[str, Any]]:
        return VersionSerializer(marketplace_versions(service=obj), many=True, context=self.context).data

    @extend_schema_field(PlanSerializer(many=True))
    def get_plans(self, obj: Service) -> list[dict[str, Any]]:
        return PlanSerializer(marketplace_plans(service=obj), many=True).data

    def get_page_url(self, obj: Service) -> str:
        from django.urls import reverse

        path = reverse("marketplace:detail", args=[obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
