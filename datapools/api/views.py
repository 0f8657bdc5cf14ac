"""REST API for data pools: one view per resource, business rules in services and selectors."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import FileResponse, HttpRequest
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from datapools import selectors, services
from datapools.models import DataPoolShare, DataSourceDescriptor, Visibility
from datapools.selectors import Access
from datapools.uploads import MeteredUploadHandler, install_upload_handler
from planqk_portal.api_fields import QuerySerializer, StrictUUIDField
from planqk_portal.errors import ApplicationError

from .serializers import (
    DataFileSerializer,
    DataFileUploadSerializer,
    DataPoolCreateSerializer,
    DataPoolErrorSerializer,
    DataPoolSerializer,
    DataPoolUpdateSerializer,
    DataSourceCreateSerializer,
    DataSourceSerializer,
    ShareCreateSerializer,
    ShareSerializer,
)

TAG = ["data pools"]
ERRORS = {
    400: OpenApiResponse(DataPoolErrorSerializer, description="Invalid input"),
    403: OpenApiResponse(DataPoolErrorSerializer, description="`datapool:forbidden`"),
    404: OpenApiResponse(DataPoolErrorSerializer, description="`datapool:not-found`"),
}
LIST_FILTERS = ("mine", "shared", "public", "writable")


def _default_source_id() -> Subquery:
    return Subquery(DataSourceDescriptor.objects.filter(pool=OuterRef("pk"), is_default=True).values("pk")[:1])


class DataPoolListView(GenericAPIView):
    """Pools you can read, and creating one."""

    serializer_class = DataPoolSerializer

    @extend_schema(
        tags=TAG,
        summary="List data pools you can read",
        parameters=[
            OpenApiParameter(
                "show", str, enum=list(LIST_FILTERS), description="Only yours, shared with you, public or writable."
            )
        ],
        responses={200: DataPoolSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        pools = selectors.datapool_list_readable(user=request.user).annotate(default_source_id=_default_source_id())
        show = request.query_params.get("show")
        if show is not None and show not in LIST_FILTERS:  # ?show= too: not one of the enum
            raise ApplicationError(f"show must be one of {', '.join(LIST_FILTERS)}.", code="invalid")
        if show == "mine":
            pools = pools.filter(owner=request.user)
        elif show == "shared":
            pools = pools.filter(Exists(DataPoolShare.objects.filter(pool=OuterRef("pk"), user=request.user)))
        elif show == "public":
            pools = pools.filter(visibility=Visibility.PUBLIC)
        elif show == "writable":
            pools = pools.filter(access__gte=Access.WRITE)
        page = self.paginate_queryset(pools)
        return self.get_paginated_response(DataPoolSerializer(page, many=True).data)

    @extend_schema(
        tags=TAG,
        summary="Create a data pool (with its default data source)",
        request=DataPoolCreateSerializer,
        responses={201: DataPoolSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = DataPoolCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pool = services.datapool_create(user=request.user, **data.validated_data)
        pool = selectors.datapool_get(user=request.user, pool_id=pool.pk)
        return Response(DataPoolSerializer(pool).data, status=status.HTTP_201_CREATED)


class DataPoolDetailView(GenericAPIView):
    serializer_class = DataPoolSerializer

    @extend_schema(tags=TAG, summary="Get a data pool", responses={200: DataPoolSerializer, **ERRORS})
    def get(self, request: Request, pool_id: str) -> Response:
        return Response(DataPoolSerializer(selectors.datapool_get(user=request.user, pool_id=pool_id)).data)

    @extend_schema(
        tags=TAG,
        summary="Rename, describe, or make a pool public or private (owner)",
        request=DataPoolUpdateSerializer,
        responses={200: DataPoolSerializer, **ERRORS},
    )
    def patch(self, request: Request, pool_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.OWNER)
        data = DataPoolUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.datapool_update(user=request.user, pool=pool, **data.validated_data)
        return Response(DataPoolSerializer(selectors.datapool_get(user=request.user, pool_id=pool.pk)).data)

    @extend_schema(tags=TAG, summary="Delete a data pool and all its files (owner)", responses={204: None, **ERRORS})
    def delete(self, request: Request, pool_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.OWNER)
        services.datapool_delete(user=request.user, pool=pool)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DataSourceListView(GenericAPIView):
    serializer_class = DataSourceSerializer
    pagination_class = None  # a pool has a handful of data sources

    @extend_schema(
        tags=TAG, summary="List a pool's data sources", responses={200: DataSourceSerializer(many=True), **ERRORS}
    )
    def get(self, request: Request, pool_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id)
        return Response(DataSourceSerializer(selectors.datasource_list(pool=pool), many=True).data)

    @extend_schema(
        tags=TAG,
        summary="Add a data source (write access)",
        request=DataSourceCreateSerializer,
        responses={201: DataSourceSerializer, **ERRORS},
    )
    def post(self, request: Request, pool_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.WRITE)
        data = DataSourceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = services.datasource_create(user=request.user, pool=pool, name=data.validated_data["name"])
        return Response(DataSourceSerializer(source).data, status=status.HTTP_201_CREATED)


class DataSourceDetailView(GenericAPIView):
    serializer_class = DataSourceSerializer

    @extend_schema(tags=TAG, summary="Get a data source", responses={200: DataSourceSerializer, **ERRORS})
    def get(self, request: Request, pool_id: str, source_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id)
        return Response(DataSourceSerializer(selectors.datasource_get(pool=pool, source_id=source_id)).data)

    @extend_schema(
        tags=TAG,
        summary="Delete a data source and its files (write access; not the default one)",
        responses={204: None, **ERRORS},
    )
    def delete(self, request: Request, pool_id: str, source_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.WRITE)
        source = selectors.datasource_get(pool=pool, source_id=source_id)
        services.datasource_delete(user=request.user, source=source)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DataFileListView(GenericAPIView):
    """A pool's files, and uploading one (multipart, streamed, limited)."""

    serializer_class = DataFileSerializer
    parser_classes = [MultiPartParser]

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # Before DRF parses anything: the metered handler counts and hashes as the file streams in.
        self.upload_handler: MeteredUploadHandler | None = None
        if request.method == "POST":
            self.upload_handler = install_upload_handler(request, max_bytes=selectors.max_upload_bytes())
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        tags=TAG,
        summary="List a pool's files (newest first)",
        parameters=[OpenApiParameter("data_source", OpenApiTypes.UUID, description="Only this data source.")],
        responses={200: DataFileSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request, pool_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id)
        if "data_source" in request.query_params:
            # A filter that is not a UUID (or empty) is the caller's mistake, not "no filter".
            query = FileFilterSerializer(data=request.query_params)
            query.is_valid(raise_exception=True)
            source = selectors.datasource_get(pool=pool, source_id=query.validated_data["data_source"])
        else:
            source = None
        page = self.paginate_queryset(selectors.datafile_list(pool=pool, source=source))
        return self.get_paginated_response(DataFileSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        tags=TAG,
        summary="Upload a file (write access)",
        description="Any type; `.json` files must be valid JSON. At most `PLANQK_DATAPOOL_MAX_UPLOAD_MB` "
        "(413 `datapool:too-large`); nothing is stored when refused.",
        request={"multipart/form-data": DataFileUploadSerializer},
        responses={
            201: DataFileSerializer,
            **ERRORS,
            413: OpenApiResponse(DataPoolErrorSerializer, description="`datapool:too-large`"),
            422: OpenApiResponse(DataPoolErrorSerializer, description="`datapool:not-json`"),
        },
    )
    def post(self, request: Request, pool_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.WRITE)
        data = DataFileUploadSerializer(data=request.data)  # parsing streams the body through the handler
        if self.upload_handler is not None and self.upload_handler.refused:
            raise ApplicationError(
                f"The upload is larger than the limit of {selectors.human_size(selectors.max_upload_bytes())} "
                "(PLANQK_DATAPOOL_MAX_UPLOAD_MB). Nothing was stored.",
                code="datapool:too-large",
                status=413,
            )
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        source_id = data.validated_data.get("data_source_id")
        try:
            source = selectors.datasource_get(pool=pool, source_id=source_id) if source_id else None
            datafile = services.datafile_upload(
                user=request.user, pool=pool, upload=upload, name=data.validated_data.get("name") or None, source=source
            )
        finally:
            upload.close()
        return Response(DataFileSerializer(datafile, context={"request": request}).data, status=status.HTTP_201_CREATED)


class DataFileDetailView(GenericAPIView):
    serializer_class = DataFileSerializer

    @extend_schema(
        tags=TAG, summary="Get a file's metadata and reference", responses={200: DataFileSerializer, **ERRORS}
    )
    def get(self, request: Request, pool_id: str, file_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id)
        datafile = selectors.datafile_get(pool=pool, file_id=file_id)
        return Response(DataFileSerializer(datafile, context={"request": request}).data)

    @extend_schema(tags=TAG, summary="Delete a file (write access)", responses={204: None, **ERRORS})
    def delete(self, request: Request, pool_id: str, file_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.WRITE)
        services.datafile_delete(user=request.user, datafile=selectors.datafile_get(pool=pool, file_id=file_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class _AnyContent(BaseContentNegotiation):
    """Downloads answer whatever the client accepts: the body is the file, not a rendered object."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class DataFileDownloadView(GenericAPIView):
    content_negotiation_class = _AnyContent

    @extend_schema(
        tags=TAG,
        summary="Download a file's content",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **ERRORS},
    )
    def get(self, request: Request, pool_id: str, file_id: str) -> FileResponse:
        from datapools.downloads import datafile_response

        pool = selectors.datapool_get(user=request.user, pool_id=pool_id)
        return datafile_response(selectors.datafile_get(pool=pool, file_id=file_id))


class FileFilterSerializer(QuerySerializer):
    data_source = StrictUUIDField()


class ShareListView(GenericAPIView):
    serializer_class = ShareSerializer
    pagination_class = None

    @extend_schema(
        tags=TAG, summary="Who the pool is shared with (owner)", responses={200: ShareSerializer(many=True), **ERRORS}
    )
    def get(self, request: Request, pool_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.OWNER)
        shares = (
            DataPoolShare.objects.filter(pool=pool).select_related("user").order_by(Coalesce("user__email", "email"))
        )
        return Response(ShareSerializer(shares, many=True).data)

    @extend_schema(
        tags=TAG,
        summary="Share with a registered user by e-mail, or change their permission (owner)",
        request=ShareCreateSerializer,
        responses={201: ShareSerializer, **ERRORS},
    )
    def post(self, request: Request, pool_id: str) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.OWNER)
        data = ShareCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        share = services.datapool_share(user=request.user, pool=pool, **data.validated_data)
        return Response(ShareSerializer(share).data, status=status.HTTP_201_CREATED)


class ShareDetailView(GenericAPIView):
    serializer_class = ShareSerializer

    @extend_schema(
        tags=TAG,
        summary="Remove a share (owner), or leave a pool shared with you",
        responses={204: None, **ERRORS},
    )
    def delete(self, request: Request, pool_id: str, share_id: int) -> Response:
        pool = selectors.datapool_get(user=request.user, pool_id=pool_id)
        services.datapool_unshare(user=request.user, pool=pool, share_id=share_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
