"""The algorithms REST API: one view per operation, thin; permissions are the selectors' (as on the pages)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from algorithms import selectors, services
from algorithms.models import Algorithm
from services import upload_handlers
from services.api.serializers import ServiceSerializer
from services.selectors import service_get_owned

from .serializers import (
    AlgorithmQuerySerializer,
    AlgorithmSerializer,
    AlgorithmUpdateSerializer,
    AlgorithmWriteSerializer,
    GitImportSerializer,
    ImplementationFileSerializer,
    ImplementationFileUploadSerializer,
    ImplementationSerializer,
    ImplementationUpdateSerializer,
    ImplementationWriteSerializer,
)

TAGS = ["algorithms"]


def _counted(request: Request, algorithm_id: Any) -> Algorithm:
    """The algorithm as the catalogue lists it: with the count of implementations the caller may see."""
    return selectors.algorithm_list(user=request.user).get(pk=algorithm_id)


class AlgorithmListCreateView(GenericAPIView):
    serializer_class = AlgorithmSerializer

    @extend_schema(
        tags=TAGS,
        summary="The algorithm catalogue",
        parameters=[AlgorithmQuerySerializer],
        responses=AlgorithmSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        query = AlgorithmQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        algorithms = selectors.algorithm_list(
            user=request.user,
            search=params.get("search", ""),
            problem_class=params.get("problem_class", ""),
            tag=params.get("tag", ""),
        )
        page = self.paginate_queryset(algorithms)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Propose an algorithm",
        request=AlgorithmWriteSerializer,
        responses={201: AlgorithmSerializer},
    )
    def post(self, request: Request) -> Response:
        data = AlgorithmWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        algorithm = services.algorithm_create(author=request.user, **data.validated_data)
        return Response(self.get_serializer(_counted(request, algorithm.pk)).data, status=status.HTTP_201_CREATED)


class AlgorithmDetailView(GenericAPIView):
    serializer_class = AlgorithmSerializer

    @extend_schema(tags=TAGS, summary="One algorithm", responses=AlgorithmSerializer)
    def get(self, request: Request, algorithm_id: Any) -> Response:
        algorithm = selectors.algorithm_get(algorithm_id=algorithm_id)
        return Response(self.get_serializer(_counted(request, algorithm.pk)).data)

    @extend_schema(
        tags=TAGS,
        summary="Edit an algorithm (its author only)",
        request=AlgorithmUpdateSerializer,
        responses=AlgorithmSerializer,
    )
    def patch(self, request: Request, algorithm_id: Any) -> Response:
        algorithm = selectors.algorithm_get(algorithm_id=algorithm_id)
        data = AlgorithmUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        algorithm = services.algorithm_update(algorithm=algorithm, user=request.user, **data.validated_data)
        return Response(self.get_serializer(_counted(request, algorithm.pk)).data)


class ImplementationListCreateView(GenericAPIView):
    serializer_class = ImplementationSerializer

    @extend_schema(
        tags=TAGS,
        summary="The implementations you may use (own, shared with you, public)",
        parameters=[OpenApiParameter("algorithm", str, description="Only this algorithm's (its id)")],
        responses=ImplementationSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        algorithm = None
        if request.query_params.get("algorithm"):
            algorithm = selectors.algorithm_get(algorithm_id=request.query_params["algorithm"])
        implementations = selectors.implementation_list_visible(user=request.user, algorithm=algorithm)
        page = self.paginate_queryset(implementations.prefetch_related("files"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Add an implementation",
        request=ImplementationWriteSerializer,
        responses={201: ImplementationSerializer},
    )
    def post(self, request: Request) -> Response:
        data = ImplementationWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        algorithm = selectors.algorithm_get(algorithm_id=values.pop("algorithm_id"))
        implementation = services.implementation_create(algorithm=algorithm, owner=request.user, **values)
        return Response(self.get_serializer(implementation).data, status=status.HTTP_201_CREATED)


class ImplementationDetailView(GenericAPIView):
    serializer_class = ImplementationSerializer

    @extend_schema(
        tags=TAGS, summary="One implementation (404 when you may not see it)", responses=ImplementationSerializer
    )
    def get(self, request: Request, implementation_id: Any) -> Response:
        implementation = selectors.implementation_get_visible(user=request.user, implementation_id=implementation_id)
        return Response(self.get_serializer(implementation).data)

    @extend_schema(
        tags=TAGS,
        summary="Change an implementation (its owner only)",
        request=ImplementationUpdateSerializer,
        responses=ImplementationSerializer,
    )
    def patch(self, request: Request, implementation_id: Any) -> Response:
        implementation = selectors.implementation_get_owned(user=request.user, implementation_id=implementation_id)
        data = ImplementationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        implementation = services.implementation_update(
            implementation=implementation, user=request.user, **data.validated_data
        )
        return Response(self.get_serializer(implementation).data)

    @extend_schema(tags=TAGS, summary="Delete an implementation and its files (its owner only)", responses={204: None})
    def delete(self, request: Request, implementation_id: Any) -> Response:
        implementation = selectors.implementation_get_owned(user=request.user, implementation_id=implementation_id)
        services.implementation_delete(implementation=implementation, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImplementationFileListCreateView(GenericAPIView):
    serializer_class = ImplementationFileSerializer
    parser_classes = [MultiPartParser, FormParser]
    upload_handler: upload_handlers.LimitedUploadHandler | None = None

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        if request.method == "POST":
            self.upload_handler = upload_handlers.install(request)
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        summary="The files (versions) of an implementation",
        responses=ImplementationFileSerializer(many=True),
    )
    def get(self, request: Request, implementation_id: Any) -> Response:
        implementation = selectors.implementation_get_visible(user=request.user, implementation_id=implementation_id)
        files = selectors.implementation_files(implementation=implementation)
        return Response(self.get_serializer(files, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Upload a new version (a zip checked like a service upload; owner only)",
        request={"multipart/form-data": ImplementationFileUploadSerializer},
        responses={201: ImplementationFileSerializer},
    )
    def post(self, request: Request, implementation_id: Any) -> Response:
        request.data  # noqa: B018 - parse the body now, so the size-limited handler has seen it
        if self.upload_handler is not None and self.upload_handler.refused:
            raise upload_handlers.too_large_error()
        implementation = selectors.implementation_get_owned(user=request.user, implementation_id=implementation_id)
        data = ImplementationFileUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.implementation_file_add(
            implementation=implementation, user=request.user, archive=data.validated_data["file"]
        )
        return Response(self.get_serializer(row).data, status=status.HTTP_201_CREATED)


class ImplementationGitImportView(GenericAPIView):
    serializer_class = ImplementationFileSerializer

    @extend_schema(
        tags=TAGS,
        summary="Import a new version from a git repository (http/https; fetched by a worker; owner only)",
        request=GitImportSerializer,
        responses={202: ImplementationFileSerializer},
    )
    def post(self, request: Request, implementation_id: Any) -> Response:
        implementation = selectors.implementation_get_owned(user=request.user, implementation_id=implementation_id)
        data = GitImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.implementation_git_import(
            implementation=implementation, user=request.user, **data.validated_data
        )
        return Response(self.get_serializer(row).data, status=status.HTTP_202_ACCEPTED)


class ImplementationFileCreateServiceView(GenericAPIView):
    serializer_class = ServiceSerializer

    @extend_schema(
        tags=TAGS,
        summary="Create Service from a file: a service of your own (Free plan, not published), built",
        description="201 with the new service; 200 with the one you made from this file before.",
        request=None,
        responses={201: ServiceSerializer, 200: ServiceSerializer},
    )
    def post(self, request: Request, implementation_id: Any, file_id: Any) -> Response:
        implementation = selectors.implementation_get_visible(user=request.user, implementation_id=implementation_id)
        file = selectors.implementation_file_get_visible(user=request.user, file_id=file_id)
        if file.implementation_id != implementation.pk:
            from planqk_portal.errors import ApplicationError

            raise ApplicationError("No such implementation file.", code="implementation:not-found", status=404)
        service, created = services.service_from_implementation_file(file=file, user=request.user)
        service = service_get_owned(user=request.user, service_id=service.pk)
        return Response(
            self.get_serializer(service).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
