"""Upgrading a platform whose gateway forwarded executions itself (before the external runtime)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

OLD = ("applications", "0002_soft_delete_and_external")


@pytest.mark.django_db(transaction=True)
def test_forwarded_executions_keep_their_provider_id_and_are_not_started_again():
    executor = MigrationExecutor(connection)
    # Back to just before the external runtime took over (and whatever depends on it undone too).
    executor.migrate([OLD])
    old = MigrationExecutor(connection)._create_project_state(with_applied_migrations=True).apps
    User = old.get_model("accounts", "User")
    Service = old.get_model("services", "Service")
    ServiceVersion = old.get_model("services", "ServiceVersion")
    Job = old.get_model("jobs", "Job")
    ExternalExecution = old.get_model("applications", "ExternalExecution")
    owner = User.objects.create(email="provider@example.com")
    service = Service.objects.create(owner=owner, name="remote", source="URL", external_url="https://example.org/svc")
    version = ServiceVersion.objects.create(service=service, version="1.0.0", status="READY", runtime="external")
    running = Job.objects.create(
        service=service, service_version=version, owner=owner, status="RUNNING", runtime="external"
    )
    done = Job.objects.create(
        service=service, service_version=version, owner=owner, status="SUCCEEDED", runtime="external", result={"sum": 3}
    )
    ExternalExecution.objects.create(job=running, external_id="ext-7", base_url="https://example.org/svc")
    ExternalExecution.objects.create(job=done, external_id="ext-8", base_url="https://example.org/svc")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from jobs.models import Job as CurrentJob

    running = CurrentJob.objects.get(pk=running.pk)
    assert (running.status, running.error_code) == ("UNKNOWN", "platform:upgraded")
    assert "ext-7" in running.error_detail
    assert running.runtime_handle["external_id"] == "ext-7"
    done = CurrentJob.objects.get(pk=done.pk)
    assert (done.status, done.result) == ("SUCCEEDED", {"sum": 3})
    assert done.runtime_handle["external_id"] == "ext-8"
    assert "applications_externalexecution" not in connection.introspection.table_names()
