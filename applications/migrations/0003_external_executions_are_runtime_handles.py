"""Services imported from a URL now run on the external runtime: the provider's execution id lives
in the job's runtime handle, and ExternalExecution goes.

Executions the old gateway forwarded and that had not ended are not started again (the engine
would POST them to the provider a second time): they end UNKNOWN with the provider's id in the
detail, and finished ones keep everything they had.
"""

from django.db import migrations
from django.utils import timezone


def end_forwarded_executions(apps, schema_editor) -> None:  # noqa: ANN001 - Django's signature
    ExternalExecution = apps.get_model("applications", "ExternalExecution")
    Job = apps.get_model("jobs", "Job")
    UsageRecord = apps.get_model("payments", "UsageRecord")
    for mapping in ExternalExecution.objects.select_related("job").iterator():
        job = mapping.job
        handle = {
            "runtime": "external",
            "execution_id": f"job-{job.pk}",
            "base_url": mapping.base_url,
            "external_id": mapping.external_id,
        }
        fields = {"runtime_handle": handle}
        if job.status in ("PENDING", "RUNNING"):
            fields.update(
                status="UNKNOWN",
                ended_at=timezone.now(),
                error_code="platform:upgraded",
                error_detail=(
                    "The platform was upgraded while this execution ran at the provider "
                    f"(its id there: {mapping.external_id}); its outcome was not recorded."
                ),
            )
        Job.objects.filter(pk=job.pk).update(**fields)
        if job.status in ("PENDING", "RUNNING") and job.subscription_id:
            UsageRecord.objects.get_or_create(
                job_id=job.pk, defaults={"subscription_id": job.subscription_id, "status": "UNKNOWN", "price_cents": 0}
            )


class Migration(migrations.Migration):
    dependencies = [
        ("applications", "0002_soft_delete_and_external"),
        ("jobs", "0002_execution_progress"),
        ("payments", "0002_cards_invoices"),
    ]

    operations = [
        migrations.RunPython(end_forwarded_executions, migrations.RunPython.noop),
        migrations.DeleteModel(name="ExternalExecution"),
    ]
