"""Input and output shapes of the services API (docs/DEVELOPING.md, "REST API used by the CLI")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from planqk_portal.api_fields import (
    DocumentedFloatField,
    DocumentedIntegerField,
    StrictBooleanField,
    StrictCharField,
)
from services import selectors
from services.models import QuantumBackend, Service, ServiceVersion, service_name_validator
from services.services import MAX_DESCRIPTION, VERSION_RE, resource_bounds


class VersionRefSerializer(serializers.Serializer):
    """A version in short: enough to show a status."""

    id = serializers.UUIDField()
    version = serializers.CharField()
    status = serializers.CharField()


class ServiceVersionSerializer(serializers.ModelSerializer):
    is_callable = serializers.BooleanField(read_only=True)

    class Meta:
        model = ServiceVersion
        fields = (
            "id",
            "version",
            "status",
            "build_error",
            "build_error_code",
            "created_at",
            "build_started_at",
            "build_ended_at",
            "is_callable",
            "generation",
        )
        read_only_fields = fields


class ServiceSerializer(serializers.ModelSerializer):
    cpus = serializers.FloatField(read_only=True)
    external_url = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()
    published_version = serializers.SerializerMethodField()
    gateway_url = serializers.SerializerMethodField()
    retry_on_host_loss = serializers.BooleanField(
        read_only=True,
        help_text="When the host running an execution is lost before any interim result, run it again on another "
        "host (otherwise it fails with platform:host-lost, unbilled); set it with PATCH",
    )
    queue = serializers.CharField(
        read_only=True,
        help_text="The worker queue an operator pinned this service to (only hosts consuming it build and run it); "
        "empty: any host with the version's runtime. Operators set it; the API does not",
    )

    class Meta:
        model = Service
        fields = (
            "id",
            "name",
            "title",
            "description",
            "quantum_backend",
            "lifecycle",
            "source",
            "external_url",
            "memory_mb",
            "cpus",
            "timeout_seconds",
            "retry_on_host_loss",
            "queue",
            "created_at",
            "latest_version",
            "published_version",
            "gateway_url",
        )
        read_only_fields = fields

    @staticmethod
    def _ref(version: ServiceVersion | None) -> dict[str, Any] | None:
        if version is None:
            return None
        return {"id": version.id, "version": version.version, "status": version.status}

    @extend_schema_field(serializers.URLField(allow_null=True, help_text="For services imported from a URL."))
    def get_external_url(self, service: Service) -> str | None:
        """The URL a service imported from one forwards to; null for uploaded code (not an empty string)."""
        return service.external_url or None

    @extend_schema_field(VersionRefSerializer(allow_null=True))
    def get_latest_version(self, service: Service) -> dict[str, Any] | None:
        # The list annotates these; a single service reads them.
        if getattr(service, "latest_version_id", None):
            return {
                "id": service.latest_version_id,
                "version": service.latest_version_label,
                "status": service.latest_version_status,
            }
        return self._ref(selectors.service_version_latest(service=service))

    @extend_schema_field(VersionRefSerializer(allow_null=True))
    def get_published_version(self, service: Service) -> dict[str, Any] | None:
        return self._ref(service.published_version)

    @extend_schema_field(OpenApiTypes.URI)
    def get_gateway_url(self, service: Service) -> str | None:
        """The endpoint of the version callers get by default; null while none is callable."""
        version = selectors.service_version_latest_callable(service=service)
        if version is None:
            return None
        return selectors.service_endpoint_url(service=service, version=version, request=self.context.get("request"))


def _resource(key: str) -> Callable[[], dict[str, Any]]:
    """A resource's bounds for the schema, from the settings when the schema is made."""

    def bounds() -> dict[str, Any]:
        low, _default, high = resource_bounds()[key]
        return {"minimum": float(low), "maximum": float(high)} if key == "cpus" else {"minimum": low, "maximum": high}

    return bounds


def _trimmed(regex: str, *, prefix: str = "", blank: bool = False) -> dict[str, str]:
    """services.services' own grammar for a value it trims first; with ``blank`` whitespace alone
    counts as not given (the empty string is the schema's other branch, drf-spectacular's)."""
    inner = regex.removeprefix("^").removesuffix("$")
    pattern = rf"^\s*{prefix}(?:{inner})\s*$"
    return {"pattern": rf"{pattern}|^\s+$" if blank else pattern}


# What services.services checks, with its own codes, as the schema can say it.
NAME_SCHEMA = _trimmed(service_name_validator.regex.pattern)
VERSION_SCHEMA = _trimmed(VERSION_RE.pattern, prefix="[vV]?", blank=True)
BACKEND_SCHEMA = _trimmed(
    "|".join("".join(f"[{c.lower()}{c}]" for c in value) for value in QuantumBackend.values), blank=True
)


class ServiceCreateSerializer(serializers.Serializer):
    file = serializers.FileField(
        required=False, allow_empty_file=True, help_text="user_code.zip (src/program.py, requirements.txt, ...)"
    )
    external_url = StrictCharField(
        required=False,
        allow_blank=True,
        schema={"format": "uri"},
        help_text="Instead of a file: the http(s) URL of a service running elsewhere",
    )
    api_spec = serializers.FileField(
        required=False, allow_empty_file=True, help_text="OpenAPI 3 document (YAML or JSON); default: the template's"
    )
    name = StrictCharField(
        max_length=200,
        schema=NAME_SCHEMA,
        help_text="Lower-case letters, digits and dashes (at most 64, starting and ending with a letter or digit); "
        "part of the URL",
    )
    title = StrictCharField(required=False, allow_blank=True, max_length=120)
    description = StrictCharField(required=False, allow_blank=True, max_length=MAX_DESCRIPTION, help_text="Markdown")
    quantum_backend = StrictCharField(
        required=False, allow_blank=True, schema=BACKEND_SCHEMA, help_text="NONE (the default), IBM or DWAVE"
    )
    memory_mb = DocumentedIntegerField(required=False, allow_null=True, schema=_resource("memory_mb"))
    cpus = DocumentedFloatField(required=False, allow_null=True, schema=_resource("cpus"))
    timeout_seconds = DocumentedIntegerField(required=False, allow_null=True, schema=_resource("timeout_seconds"))
    version = StrictCharField(
        required=False, allow_blank=True, max_length=32, schema=VERSION_SCHEMA, help_text="Default 1.0.0"
    )
    skip_example_run = StrictBooleanField(
        required=False,
        default=False,
        help_text="Builds check that the code imports but skip the API spec's example run (hardware tokens)",
    )
    plans = StrictCharField(
        required=False,
        allow_blank=True,
        help_text='Pricing plans, a JSON list: [{"name": "Basic", "kind": "FREE" | "PER_EXECUTION" | "MONTHLY", '
        '"price_cents": 5, "requests_per_minute": 120, "max_concurrent": 5}]; default one Free plan',
    )


class ServiceCreateJSONSerializer(ServiceCreateSerializer):
    """The same in a JSON body, which carries no files: a service imported from a URL."""

    file = None
    api_spec = None
    external_url = StrictCharField(schema={"format": "uri"}, help_text="The http(s) URL of a service running elsewhere")


class ServiceUpdateSerializer(serializers.Serializer):
    """What an owner changes with PATCH; a field left out stays as it is."""

    retry_on_host_loss = StrictBooleanField(
        required=False,
        help_text="Run an execution again on another host when its host is lost before any interim result",
    )


class ServiceVersionCreateSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, allow_empty_file=True, help_text="user_code.zip")
    external_url = StrictCharField(
        required=False, allow_blank=True, help_text="For services imported from a URL: the new version's URL"
    )
    api_spec = serializers.FileField(
        required=False, allow_empty_file=True, help_text="OpenAPI 3 document; default: the archive's or the previous"
    )
    version = StrictCharField(required=False, allow_blank=True, help_text="Default: the next patch number")
    skip_example_run = StrictBooleanField(
        required=False,
        default=None,
        allow_null=True,
        help_text="Set the service's choice to skip the API spec's example run in builds; default: unchanged",
    )


class ServiceVersionCreateJSONSerializer(ServiceVersionCreateSerializer):
    """The same in a JSON body, which carries no files: a new version of a service imported from a URL."""

    file = None
    api_spec = None


class LogChunkSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    text = serializers.CharField()


class BuildLogSerializer(serializers.Serializer):
    chunks = LogChunkSerializer(many=True)
    last = serializers.IntegerField(help_text="Pass it as ?after= to get only newer chunks")
    final = serializers.BooleanField(help_text="True once the build has ended: no more chunks will come")
