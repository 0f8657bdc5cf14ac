"""REST API: applications (the secret is returned once, on create or regenerate) and subscriptions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from applications import selectors, services
from planqk_portal.errors import ApplicationError

from .serializers import (
    ApplicationCreatedSerializer,
    ApplicationInputSerializer,
    ApplicationSerializer,
    SubscriptionInputSerializer,
    SubscriptionSerializer,
)


def _created_payload(issued: services.IssuedCredentials, request: Request) -> dict:
    application = issued.application
    application.consumer_secret = issued.secret
    application.basic_auth = issued.basic_auth
    return ApplicationCreatedSerializer(application, context={"request": request}).data


class ApplicationListView(GenericAPIView):
    serializer_class = ApplicationSerializer

    def get_queryset(self):  # noqa: ANN201
        return selectors.application_list(user=self.request.user)

    @extend_schema(summary="Your applications", responses=ApplicationSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ApplicationSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        summary="Create an application",
        description="The answer holds `consumer_secret`: it is returned only this once.",
        request=ApplicationInputSerializer,
        responses={201: ApplicationCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        data = ApplicationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = services.application_create(owner=request.user, **data.validated_data)
        return Response(_created_payload(issued, request), status=status.HTTP_201_CREATED)


class ApplicationDetailView(GenericAPIView):
    serializer_class = ApplicationSerializer

    @extend_schema(summary="One application", responses=ApplicationSerializer)
    def get(self, request: Request, pk: str) -> Response:
        application = selectors.application_get(user=request.user, application_id=pk)
        return Response(ApplicationSerializer(application, context={"request": request}).data)

    @extend_schema(
        summary="Delete an application",
        description="Its credentials stop working and its subscriptions end; usage stays billed.",
        responses={204: None},
    )
    def delete(self, request: Request, pk: str) -> Response:
        services.application_delete(application=selectors.application_get(user=request.user, application_id=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApplicationRegenerateSecretView(GenericAPIView):
    serializer_class = ApplicationCreatedSerializer

    @extend_schema(
        summary="Issue a new consumer secret",
        description="The old secret and its access tokens stop working. The new secret is returned only once.",
        request=None,
        responses=ApplicationCreatedSerializer,
    )
    def post(self, request: Request, pk: str) -> Response:
        application = selectors.application_get(user=request.user, application_id=pk)
        issued = services.application_regenerate_secret(application=application)
        return Response(_created_payload(issued, request))


class SubscriptionListView(GenericAPIView):
    serializer_class = SubscriptionSerializer

    @extend_schema(summary="The application's active subscriptions", responses=SubscriptionSerializer(many=True))
    def get(self, request: Request, pk: str) -> Response:
        application = selectors.application_get(user=request.user, application_id=pk)
        page = self.paginate_queryset(selectors.subscription_list(application=application))
        return self.get_paginated_response(SubscriptionSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        summary="Subscribe the application to a service",
        description="ACCESSIBLE services take only their owner's applications, PUBLISHED ones anyone's; "
        "a paid plan needs a valid card.",
        request=SubscriptionInputSerializer,
        responses={201: SubscriptionSerializer},
    )
    def post(self, request: Request, pk: str) -> Response:
        application = selectors.application_get(user=request.user, application_id=pk)
        data = SubscriptionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        plan = selectors.plan_get_subscribable(user=request.user, plan_id=data.validated_data["plan_id"])
        if plan.service_id != data.validated_data["service_id"]:
            raise ApplicationError("That pricing plan belongs to another service.", code="subscription:plan-mismatch")
        subscription = services.subscription_create(application=application, service=plan.service, plan=plan)
        return Response(
            SubscriptionSerializer(subscription, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


class SubscriptionDetailView(GenericAPIView):
    serializer_class = SubscriptionSerializer

    @extend_schema(summary="One subscription (also ended ones)", responses=SubscriptionSerializer)
    def get(self, request: Request, pk: str, sid: str) -> Response:
        application = selectors.application_get(user=request.user, application_id=pk)
        subscription = selectors.subscription_get(application=application, subscription_id=sid)
        return Response(SubscriptionSerializer(subscription, context={"request": request}).data)

    @extend_schema(summary="Unsubscribe", description="Sets `ended_at`; usage stays billed.", responses={204: None})
    def delete(self, request: Request, pk: str, sid: str) -> Response:
        application = selectors.application_get(user=request.user, application_id=pk)
        services.subscription_end(subscription=selectors.subscription_get(application=application, subscription_id=sid))
        return Response(status=status.HTTP_204_NO_CONTENT)
