from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from .. import usage as usage_reports
from ..models import Invoice
from .serializers import (
    CardAddSerializer,
    CardSerializer,
    InvoiceSerializer,
    SetupIntentSerializer,
    UsageReportSerializer,
)

ERROR = OpenApiResponse(description='`{"code": ..., "detail": ...}`; a declined card is 402 with Stripe\'s message.')


@extend_schema(tags=["payments"])
class CardListView(APIView):
    @extend_schema(summary="Your cards", responses=CardSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(CardSerializer(selectors.card_list(user=request.user), many=True).data)

    @extend_schema(
        summary="Add a card",
        request=CardAddSerializer,
        responses={201: CardSerializer, 400: ERROR, 402: ERROR, 409: ERROR, 503: ERROR},
    )
    def post(self, request: Request) -> Response:
        body = CardAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("payment_method"):
            card = services.card_add_payment_method(user=request.user, payment_method_id=data["payment_method"])
        elif data.get("setup_intent"):
            card = services.card_add_setup_intent(user=request.user, setup_intent_id=data["setup_intent"])
        else:
            card = services.card_add_number(
                user=request.user,
                number=data["number"],
                exp_month=data["exp_month"],
                exp_year=data["exp_year"],
                cvc=data["cvc"],
            )
        return Response(CardSerializer(card).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["payments"])
class CardDetailView(APIView):
    @extend_schema(summary="Remove a card", responses={204: None, 404: ERROR})
    def delete(self, request: Request, card_id: str) -> Response:
        services.card_remove(user=request.user, card_id=card_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["payments"])
class SetupIntentView(APIView):
    @extend_schema(
        summary="Start saving a card with Stripe.js",
        request=None,
        responses={201: SetupIntentSerializer, 400: ERROR, 503: ERROR},
    )
    def post(self, request: Request) -> Response:
        intent = services.setup_intent_create(user=request.user)
        return Response({"id": intent.id, "client_secret": intent.client_secret}, status=status.HTTP_201_CREATED)


@extend_schema(tags=["payments"])
class InvoiceListView(ListAPIView):
    serializer_class = InvoiceSerializer

    def get_queryset(self) -> QuerySet[Invoice]:
        return selectors.invoice_list(user=self.request.user).prefetch_related("lines")

    @extend_schema(summary="Your invoices (as a subscriber)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["payments"])
class InvoiceDetailView(APIView):
    @extend_schema(
        summary="One invoice (yours, or one for your service)", responses={200: InvoiceSerializer, 404: ERROR}
    )
    def get(self, request: Request, invoice_id: str) -> Response:
        invoice = selectors.invoice_get(user=request.user, invoice_id=invoice_id)
        if invoice is None:
            raise NotFound("No such invoice.")
        return Response(InvoiceSerializer(invoice).data)


@extend_schema(tags=["payments"])
class EarningsListView(ListAPIView):
    serializer_class = InvoiceSerializer

    def get_queryset(self) -> QuerySet[Invoice]:
        return selectors.earnings_list(user=self.request.user).prefetch_related("lines")

    @extend_schema(summary="Invoices of subscriptions to your services (as a provider)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


PERIOD = OpenApiParameter(
    "period", str, description="The billing period as YYYY-MM (UTC); the current month when left out.", required=False
)


def _report(request: Request, role: str) -> Response:
    start = usage_reports.period_parse(request.query_params.get("period"))
    report = usage_reports.usage_report(user=request.user, role=role, period_start=start)
    return Response(report.as_dict())


@extend_schema(tags=["payments"])
class UsageView(APIView):
    @extend_schema(
        summary="Usage and cost of your applications in a period (as a subscriber)",
        parameters=[PERIOD],
        responses=UsageReportSerializer,
    )
    def get(self, request: Request) -> Response:
        return _report(request, usage_reports.SUBSCRIBER)


@extend_schema(tags=["payments"])
class EarningsSummaryView(APIView):
    @extend_schema(
        summary="Executions of your services and what they earn in a period (as a provider)",
        parameters=[PERIOD],
        responses=UsageReportSerializer,
    )
    def get(self, request: Request) -> Response:
        return _report(request, usage_reports.PROVIDER)
