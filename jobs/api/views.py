"""The jobs REST API: one view per operation, thin; the rules live in jobs.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import selectors, services
from jobs.admission import execution_admit
from jobs.models import Job, JobSource
from planqk_portal.api_schema import error, errors
from planqk_portal.errors import ApplicationError
from planqk_portal.logs import log_poll_payload

from .parsers import JobInputJSONParser
from .serializers import (
    InterimResultSerializer,
    JobCreateSerializer,
    JobLogSerializer,
    JobQuerySerializer,
    JobSerializer,
)

TAGS = ["jobs"]


def _job(request: Request, job_id: Any) -> Job:
    try:
        return selectors.job_get(user=request.user, job_id=job_id)
    except Exception:
        raise ApplicationError("No such job.", code="job:not-found", status=404) from None


def resolve_service_version(*, user: Any, service_id: Any = None, service_name: str = "", version: str = "") -> Any:
    """The callable version a new job of the user runs: 404 for services they cannot use."""
    from services.selectors import service_version_callable

    usable = selectors.service_list_usable(user=user)
    if service_id:
        service = usable.filter(pk=service_id).first()
    else:
        named = list(usable.filter(name=service_name)[:10])
        own = [s for s in named if s.owner_id == user.pk]
        if len(own) == 1 or len(named) == 1:
            service = own[0] if own else named[0]
        elif named:
            raise ApplicationError(
                f"Several services you can use are called {service_name!r}; pass service_id instead.",
                code="service:ambiguous",
                status=400,
            )
        else:
            service = None
    if service is None:
        raise ApplicationError(
            "No such service among your own and your applications' subscribed services.",
            code="service:not-found",
            status=404,
        )
    found = (
        service_version_callable(service=service, version=version)
        if version
        else selectors.service_version_latest_callable(service=service)
    )
    if found is None:
        which = f"version {version}" if version else "a version"
        raise ApplicationError(
            f"Service {service.name} has no callable {which} (it must be built successfully first).",
            code="service:not-callable",
            status=409,
        )
    return found


class JobListCreateView(GenericAPIView):
    serializer_class = JobSerializer
    parser_classes = [JobInputJSONParser]

    def get_queryset(self) -> Any:
        query = JobQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        return selectors.job_list(user=self.request.user, service=wanted.get("service"), status=wanted.get("status"))

    @extend_schema(
        tags=TAGS,
        summary="Your jobs, newest first",
        parameters=[JobQuerySerializer],
        responses=JobSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Start a job",
        description="Input by value (`data`, `params`: JSON objects of at most 1 MB each; larger is 413 "
        "`input:too-large`) or by data pool reference (`dataRef`, `paramsRef`). An `Idempotency-Key` "
        "header makes a retried request return the job the first one created.",
        parameters=[OpenApiParameter("Idempotency-Key", str, location=OpenApiParameter.HEADER, required=False)],
        request=JobCreateSerializer,
        responses={
            201: JobSerializer,
            **errors(402, 409, 413, 422, 429),
            403: error(403, "`subscription:required`, `service:not-published`, or a token without the `api` scope"),
            404: error(404, "`service:not-found`, `datapool:not-found` (a referenced file or the result pool)"),
        },
    )
    def post(self, request: Request) -> Response:
        incoming = JobCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        version = resolve_service_version(
            user=request.user,
            service_id=values.get("service_id"),
            service_name=values.get("service_name", ""),
            version=values.get("version", ""),
        )
        result_pool = None
        if values.get("result_pool_id"):
            from datapools.selectors import datapool_list_writable

            result_pool = datapool_list_writable(user=request.user).filter(pk=values["result_pool_id"]).first()
            if result_pool is None:
                raise ApplicationError(
                    "No data pool you may write into has this id.", code="datapool:not-found", status=404
                )

        def ref(name: str) -> dict[str, str] | None:
            value = values.get(name)
            return {key: str(item) for key, item in value.items()} if value else None

        job = execution_admit(
            service_version=version,
            owner=request.user,
            data=values.get("data"),
            params=values.get("params"),
            data_ref=ref("dataRef"),
            params_ref=ref("paramsRef"),
            source=JobSource.API,
            idempotency_key=request.headers.get("Idempotency-Key"),
            save_result_to_pool=values.get("save_result_to_pool", False),
            result_pool=result_pool,
        )
        job = selectors.job_get(user=request.user, job_id=job.pk)
        headers = {"Location": request.build_absolute_uri(f"/api/v1/jobs/{job.pk}/")}
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED, headers=headers)


class JobDetailView(GenericAPIView):
    serializer_class = JobSerializer

    @extend_schema(tags=TAGS, summary="One of your jobs", responses=JobSerializer)
    def get(self, request: Request, job_id: Any) -> Response:
        return Response(JobSerializer(_job(request, job_id)).data)


class JobLogsView(GenericAPIView):
    serializer_class = JobLogSerializer

    @extend_schema(
        tags=TAGS,
        summary="The job's log, as numbered chunks after ?after=N",
        parameters=[OpenApiParameter("after", OpenApiTypes.INT, description="The last chunk number you have")],
        responses=JobLogSerializer,
    )
    def get(self, request: Request, job_id: Any) -> Response:
        job = _job(request, job_id)
        # The state first: the last chunks are written in the transaction that ends the job.
        final = job.is_final
        return Response(log_poll_payload(request, selectors.job_log_chunks(job=job), final=final))


class JobInterimResultsView(GenericAPIView):
    serializer_class = InterimResultSerializer

    @extend_schema(
        tags=TAGS,
        summary="The job's interim results so far, oldest first",
        responses=InterimResultSerializer(many=True),
    )
    def get(self, request: Request, job_id: Any) -> Response:
        job = _job(request, job_id)
        return Response(InterimResultSerializer(selectors.job_interim_results(job=job), many=True).data)


class JobCancelView(GenericAPIView):
    serializer_class = JobSerializer

    @extend_schema(
        tags=TAGS,
        summary="Cancel a job",
        description="A PENDING job never starts; a RUNNING one is stopped within seconds (poll the job to see "
        "CANCELLED). A job that has ended is returned as it is.",
        request=None,
        responses=JobSerializer,
    )
    def post(self, request: Request, job_id: Any) -> Response:
        job = services.job_cancel(job=_job(request, job_id))
        return Response(JobSerializer(job).data)
