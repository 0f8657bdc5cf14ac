"""The services REST API: one view per operation, thin; the rules live in services.services."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from marketplace.services import plan_terms_list_check
from planqk_portal.errors import ApplicationError
from planqk_portal.logs import log_poll_payload
from services import selectors, services, upload_handlers
from services.models import Service, ServiceVersion

from .serializers import (
    BuildLogSerializer,
    ServiceCreateJSONSerializer,
    ServiceCreateSerializer,
    ServiceSerializer,
    ServiceUpdateSerializer,
    ServiceVersionCreateJSONSerializer,
    ServiceVersionCreateSerializer,
    ServiceVersionSerializer,
)

TAGS = ["services"]


def _service(request: Request, service_id: Any) -> Service:
    service = selectors.service_get_owned(user=request.user, service_id=service_id)
    if service is None:
        raise ApplicationError("No such service.", code="service:not-found", status=404)
    return service


def _version(request: Request, service_id: Any, version_id: Any) -> ServiceVersion:
    version = selectors.service_version_get(service=_service(request, service_id), version_id=version_id)
    if version is None:
        raise ApplicationError("No such version of this service.", code="version:not-found", status=404)
    return version


def _refuse_queue(request: Request) -> None:
    """Pinning steers code onto chosen hosts (a hardware token's network): operators do it in the
    admin (:func:`hosts.routing.may_pin_queue`), nobody through the API, so a body naming
    ``queue`` is refused rather than silently ignored."""
    if isinstance(request.data, dict) and "queue" in request.data:
        raise ApplicationError(
            "queue is set by the platform's operators, not through the API.", code="service:queue-read-only"
        )


def _blank_to_none(value: Any) -> Any:
    return None if value == "" else value


def _by_content_type(request: Request, form: type, json_body: type) -> type:
    """The serializer the body's media type can fill: a JSON body has no files (its schema says so)."""
    media_type = (request.content_type or "").split(";", 1)[0].strip().lower()
    return json_body if media_type == "application/json" else form


class _UploadView(GenericAPIView):
    """Reads multipart uploads through the size-limited handler."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]
    upload_handler: upload_handlers.LimitedUploadHandler | None = None

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        if request.method == "POST":
            self.upload_handler = upload_handlers.install(request)
        return super().initialize_request(request, *args, **kwargs)

    def check_upload(self, request: Request) -> None:
        request.data  # noqa: B018 - parse the body now, so the handler has seen every byte
        if self.upload_handler is not None and self.upload_handler.refused:
            raise upload_handlers.too_large_error()


class ServiceListCreateView(_UploadView):
    serializer_class = ServiceSerializer

    def get_queryset(self) -> Any:
        return selectors.service_list_owned(user=self.request.user, name=self.request.query_params.get("name"))

    @extend_schema(
        tags=TAGS,
        summary="Your services",
        parameters=[OpenApiParameter("name", str, description="Only the service with this name")],
        responses=ServiceSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Create a service (multipart: the zip, the API spec and the properties)",
        request={"multipart/form-data": ServiceCreateSerializer, "application/json": ServiceCreateJSONSerializer},
        responses={201: ServiceSerializer},
    )
    def post(self, request: Request) -> Response:
        self.check_upload(request)
        _refuse_queue(request)
        data = _by_content_type(request, ServiceCreateSerializer, ServiceCreateJSONSerializer)(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        service = services.service_create(
            plans=_plans(values.get("plans")),
            owner=request.user,
            name=values["name"],
            title=values.get("title", ""),
            description=values.get("description", ""),
            quantum_backend=values.get("quantum_backend") or "NONE",
            archive=values.get("file"),
            external_url=values.get("external_url", ""),
            api_spec=values.get("api_spec"),
            memory_mb=_blank_to_none(values.get("memory_mb")),
            cpus=_blank_to_none(values.get("cpus")),
            timeout_seconds=_blank_to_none(values.get("timeout_seconds")),
            version=values.get("version") or None,
            skip_example_run=bool(values.get("skip_example_run")),
        )
        service = selectors.service_get_owned(user=request.user, service_id=service.pk)
        return Response(self.get_serializer(service).data, status=status.HTTP_201_CREATED)


def _plans(raw: str | None) -> list[Any] | None:
    """The ``plans`` field (a JSON list of plan terms) checked by the marketplace; None: one Free plan."""
    if raw in (None, ""):
        return None
    try:
        items = json.loads(raw)
    except ValueError:
        raise ApplicationError("plans must be a JSON list of plan objects.", code="plan:invalid") from None
    return plan_terms_list_check(items)


class ServiceDetailView(GenericAPIView):
    serializer_class = ServiceSerializer

    @extend_schema(tags=TAGS, summary="One of your services", responses=ServiceSerializer)
    def get(self, request: Request, service_id: Any) -> Response:
        return Response(self.get_serializer(_service(request, service_id)).data)

    @extend_schema(
        tags=TAGS,
        summary="Change a service's properties (those the body names)",
        request=ServiceUpdateSerializer,
        responses=ServiceSerializer,
    )
    def patch(self, request: Request, service_id: Any) -> Response:
        service = _service(request, service_id)
        _refuse_queue(request)
        data = ServiceUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.service_update(service=service, **data.validated_data)
        return Response(self.get_serializer(selectors.service_get_owned(user=request.user, service_id=service.pk)).data)

    @extend_schema(
        tags=TAGS,
        summary="Delete a service (refused with 409 while applications are subscribed)",
        responses={204: None},
    )
    def delete(self, request: Request, service_id: Any) -> Response:
        services.service_delete(service=_service(request, service_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class _LifecycleView(GenericAPIView):
    serializer_class = ServiceSerializer
    operation: Any = None

    def post(self, request: Request, service_id: Any) -> Response:
        service = type(self).operation(service=_service(request, service_id))
        service = selectors.service_get_owned(user=request.user, service_id=service.pk)
        return Response(self.get_serializer(service).data)


class ServicePublishInternalView(_LifecycleView):
    operation = staticmethod(services.service_publish_internal)

    @extend_schema(
        tags=TAGS, summary="Publish for internal use (ACCESSIBLE); needs a READY version", request=None,
        responses=ServiceSerializer,
    )  # fmt: skip
    def post(self, request: Request, service_id: Any) -> Response:
        return super().post(request, service_id)


class ServicePublishView(_LifecycleView):
    operation = staticmethod(services.service_publish)

    @extend_schema(
        tags=TAGS, summary="Publish in the marketplace (PUBLISHED); needs a READY version", request=None,
        responses=ServiceSerializer,
    )  # fmt: skip
    def post(self, request: Request, service_id: Any) -> Response:
        return super().post(request, service_id)


class ServiceUnpublishView(_LifecycleView):
    operation = staticmethod(services.service_unpublish)

    @extend_schema(tags=TAGS, summary="Unpublish (back to CREATED)", request=None, responses=ServiceSerializer)
    def post(self, request: Request, service_id: Any) -> Response:
        return super().post(request, service_id)


class ServiceVersionListCreateView(_UploadView):
    serializer_class = ServiceVersionSerializer

    @extend_schema(
        tags=TAGS, summary="The service's versions, newest first", responses=ServiceVersionSerializer(many=True)
    )
    def get(self, request: Request, service_id: Any) -> Response:
        page = self.paginate_queryset(selectors.service_version_list(service=_service(request, service_id)))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Upload a new version; it builds beside the running one and replaces it once READY",
        request={
            "multipart/form-data": ServiceVersionCreateSerializer,
            "application/json": ServiceVersionCreateJSONSerializer,
        },
        responses={201: ServiceVersionSerializer},
    )
    def post(self, request: Request, service_id: Any) -> Response:
        service = _service(request, service_id)
        self.check_upload(request)
        data = _by_content_type(request, ServiceVersionCreateSerializer, ServiceVersionCreateJSONSerializer)(
            data=request.data
        )
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = services.service_version_create(
            service=service,
            user=request.user,
            archive=values.get("file"),
            external_url=values.get("external_url", ""),
            api_spec=values.get("api_spec"),
            version=values.get("version") or None,
            skip_example_run=values.get("skip_example_run"),
        )
        return Response(self.get_serializer(version).data, status=status.HTTP_201_CREATED)


class ServiceVersionDetailView(GenericAPIView):
    serializer_class = ServiceVersionSerializer

    @extend_schema(tags=TAGS, summary="One version and its build status", responses=ServiceVersionSerializer)
    def get(self, request: Request, service_id: Any, version_id: Any) -> Response:
        return Response(self.get_serializer(_version(request, service_id, version_id)).data)


class ServiceVersionLogsView(GenericAPIView):
    serializer_class = BuildLogSerializer

    @extend_schema(
        tags=TAGS,
        summary="The build log, as numbered chunks after ?after=N",
        parameters=[OpenApiParameter("after", OpenApiTypes.INT, description="The last chunk number you have")],
        responses=BuildLogSerializer,
    )
    def get(self, request: Request, service_id: Any, version_id: Any) -> Response:
        version = _version(request, service_id, version_id)
        # Read the state first: chunks written before a final state are then all in this answer.
        final = version.is_final
        return Response(log_poll_payload(request, selectors.build_log_chunks(version=version), final=final))


class _VersionActionView(GenericAPIView):
    serializer_class = ServiceVersionSerializer
    operation: Any = None

    def post(self, request: Request, service_id: Any, version_id: Any) -> Response:
        version = type(self).operation(version=_version(request, service_id, version_id))
        return Response(self.get_serializer(version).data)


class ServiceVersionCancelView(_VersionActionView):
    operation = staticmethod(services.service_version_cancel)

    @extend_schema(
        tags=TAGS, summary="Cancel a PENDING or BUILDING build", request=None, responses=ServiceVersionSerializer
    )
    def post(self, request: Request, service_id: Any, version_id: Any) -> Response:
        return super().post(request, service_id, version_id)


class ServiceVersionRetryView(_VersionActionView):
    operation = staticmethod(services.service_version_retry)

    @extend_schema(
        tags=TAGS, summary="Build a FAILED or CANCELLED version again", request=None, responses=ServiceVersionSerializer
    )
    def post(self, request: Request, service_id: Any, version_id: Any) -> Response:
        return super().post(request, service_id, version_id)


class ServiceVersionUnpublishView(_VersionActionView):
    operation = staticmethod(services.service_version_unpublish)

    @extend_schema(
        tags=TAGS, summary="Stop a version from being callable", request=None, responses=ServiceVersionSerializer
    )
    def post(self, request: Request, service_id: Any, version_id: Any) -> Response:
        return super().post(request, service_id, version_id)
