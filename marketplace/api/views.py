from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from services.models import Service

from ..selectors import marketplace_service_get, marketplace_service_list
from .serializers import MarketplaceQuerySerializer, MarketplaceServiceSerializer


@extend_schema(tags=["marketplace"])
class MarketplaceServiceListView(ListAPIView):
    """Published services, searchable and filterable like the marketplace page."""

    serializer_class = MarketplaceServiceSerializer

    def get_queryset(self) -> QuerySet[Service]:
        query = MarketplaceQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return marketplace_service_list(
            search=data.get("search", ""),
            quantum_backend=data.get("quantum_backend", ""),
            pricing=data.get("pricing", ""),
            ordering=data.get("ordering", "newest"),
        )

    @extend_schema(summary="List published services", parameters=[MarketplaceQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["marketplace"])
class MarketplaceServiceDetailView(APIView):
    @extend_schema(summary="A published service", responses=MarketplaceServiceSerializer)
    def get(self, request: Request, service_id: str) -> Response:
        service = marketplace_service_get(service_id=service_id, user=request.user)
        if service is None:
            raise NotFound("No such service in the marketplace.")
        return Response(MarketplaceServiceSerializer(service, context={"request": request}).data)
