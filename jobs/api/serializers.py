"""Input and output shapes of the jobs API (docs/DEVELOPING.md, "REST API used by the CLI")."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import InterimResult, Job, JobStatus
from planqk_portal.api_fields import QuerySerializer, StrictBooleanField, StrictCharField, StrictUUIDField


class JobQuerySerializer(QuerySerializer):
    """The list's filters (an empty or malformed one is 400, never "no filter")."""

    service = StrictUUIDField(required=False, help_text="Only jobs of this service")
    status = serializers.ChoiceField(choices=JobStatus.choices, required=False, help_text="Only jobs in this state")


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class DataRefSerializer(serializers.Serializer):
    """A data pool file, as the Data Pools page shows it."""

    dataPoolId = StrictUUIDField()
    dataSourceDescriptorId = StrictUUIDField()
    fileId = StrictUUIDField()


class JobCostSerializer(serializers.Serializer):
    amount_cents = serializers.IntegerField(help_text="What this execution costs its subscriber (0 for own runs).")
    currency = serializers.CharField()
    billable = serializers.BooleanField(help_text="Whether the billing rule counts it (it started).")


class JobSerializer(serializers.ModelSerializer):
    """The job object."""

    service_id = serializers.UUIDField(read_only=True)
    service_name = serializers.CharField(source="service.name", read_only=True)
    version = serializers.CharField(source="service_version.version", read_only=True)
    metadata = serializers.JSONField(source="result_metadata", read_only=True, allow_null=True)
    result = serializers.JSONField(read_only=True, allow_null=True)
    error = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    result_file = serializers.SerializerMethodField()
    cost = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = (
            "id",
            "status",
            "service_id",
            "service_name",
            "version",
            "created_at",
            "started_at",
            "ended_at",
            "result",
            "metadata",
            "error",
            "duration_seconds",
            "peak_memory_kb",
            "source",
            "result_file",
            "cost",
        )
        read_only_fields = fields

    @extend_schema_field(JobErrorSerializer(allow_null=True))
    def get_error(self, job: Job) -> dict[str, str] | None:
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.UNKNOWN) and (
            job.error_code or job.error_detail
        ):
            return {"code": job.error_code or job.status, "detail": job.error_detail}
        return None

    @extend_schema_field(JobCostSerializer(allow_null=True))
    def get_cost(self, job: Job) -> dict[str, Any] | None:
        """Once final: the price its usage record holds (null while it is not final)."""
        from django.conf import settings

        from jobs.models import JOB_FINAL_STATES

        if job.status not in JOB_FINAL_STATES:
            return None
        record = None
        if job.subscription_id:
            from payments.models import UsageRecord

            record = UsageRecord.objects.filter(job_id=job.pk).only("price_cents").first()
        currency = job.subscription.currency if job.subscription_id else settings.PLANQK_CURRENCY
        return {
            "amount_cents": record.price_cents if record else 0,
            "currency": currency,
            "billable": bool(job.billable),
        }

    @extend_schema_field(DataRefSerializer(allow_null=True))
    def get_result_file(self, job: Job) -> dict[str, str] | None:
        """Where the result was saved, when the job was asked to save it to a data pool."""
        return job.result_file.reference if job.result_file_id and job.result_file else None


def _value_or_ref(name: str, ref_name: str) -> dict[str, Any]:
    """Not both an object and a reference (``null`` counts as not given)."""
    return {
        "not": {"required": [name, ref_name], "properties": {name: {"type": "object"}, ref_name: {"type": "object"}}}
    }


@extend_schema_field({"type": "object", "additionalProperties": True, "nullable": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object (anything else is refused by admission: 400 ``input:not-an-object``)."""


class JobCreateSerializer(serializers.Serializer):
    """Start a job: the service by id or by name, input by value or by data pool reference."""

    # The request schema says what the checks below and admission refuse (planqk_portal.api_schema).
    schema_constraints = {
        "anyOf": [{"required": ["service_id"]}, {"required": ["service_name"]}],
        "allOf": [_value_or_ref("data", "dataRef"), _value_or_ref("params", "paramsRef")],
    }

    service_id = StrictUUIDField(required=False)
    service_name = StrictCharField(required=False, max_length=64)
    version = StrictCharField(required=False, max_length=32, help_text="Default: the latest callable one.")
    data = JSONObjectField(required=False, allow_null=True, help_text="A JSON object, at most 1 MB.")
    params = JSONObjectField(required=False, allow_null=True, help_text="A JSON object, at most 1 MB.")
    dataRef = DataRefSerializer(required=False, allow_null=True)
    paramsRef = DataRefSerializer(required=False, allow_null=True)
    save_result_to_pool = StrictBooleanField(required=False, default=False)
    result_pool_id = StrictUUIDField(
        required=False, allow_null=True, help_text="A pool you may write into; a new pool when omitted."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("service_id") and not attrs.get("service_name"):
            raise serializers.ValidationError({"service_id": "Give service_id or service_name."})
        return attrs


class JobLogChunkSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    text = serializers.CharField()


class JobLogSerializer(serializers.Serializer):
    chunks = JobLogChunkSerializer(many=True)
    last = serializers.IntegerField(help_text="Pass it as ?after= to get only newer chunks.")
    final = serializers.BooleanField(help_text="True once the job has ended: no more chunks will come.")


class InterimResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = InterimResult
        fields = ("seq", "payload", "created_at")
        read_only_fields = fields
