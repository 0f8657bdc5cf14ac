"""Demo services for ``manage.py seed_demo``: the sample services, built on the configured runtime."""

from __future__ import annotations

from typing import Any, TextIO

from accounts.selectors import provider_has_token
from planqk_portal.errors import ApplicationError
from planqk_samples import SAMPLES, sample_zip

from . import services
from .models import BuildStatus, Lifecycle, QuantumBackend, Service

#: Sample name → service name (service names cannot hold underscores).
DEMO_SERVICES = {name: name.replace("_", "-") for name in ("sum", "qiskit_bell", "dwave_qubo", "failing", "slow")}
#: Published for internal use as soon as their build is READY.
PUBLISH_INTERNAL = {"sum"}


def _backend(user: Any, wanted: str) -> str:
    # Without the owner's provider token the sample still runs on its local simulator.
    provider = {"IBM": "IBM", "DWAVE": "DWAVE"}.get(wanted)
    if provider and not provider_has_token(user=user, provider=provider):
        return QuantumBackend.NONE
    return wanted


def seed_demo(user: Any, stdout: TextIO) -> None:
    """Create the demo services once (idempotent) and start their builds; the sum service gets published."""
    for sample_name, service_name in DEMO_SERVICES.items():
        sample = SAMPLES[sample_name]
        service = Service.objects.filter(owner=user, name=service_name, deleted_at__isnull=True).first()
        if service is None:
            try:
                service = services.service_create(
                    owner=user,
                    name=service_name,
                    title=sample.title,
                    description=sample.description,
                    quantum_backend=_backend(user, sample.quantum_backend),
                    archive=sample_zip(sample_name),
                )
            except ApplicationError as exc:
                stdout.write(f"Demo service {service_name}: not created ({exc.message})\n")
                continue
            stdout.write(f"Demo service {service_name}: created, build started\n")
        else:
            latest = service.versions.order_by("-created_at").first()
            if latest is not None and latest.status in (BuildStatus.FAILED, BuildStatus.CANCELLED):
                services.service_version_retry(version=latest)
                stdout.write(f"Demo service {service_name}: building again (last build {latest.status})\n")
        if sample_name in PUBLISH_INTERNAL and service.lifecycle == Lifecycle.CREATED:
            service = services.service_publish_when_ready(service=service, lifecycle=Lifecycle.ACCESSIBLE)
            state = "published for internal use" if service.lifecycle != Lifecycle.CREATED else "published once READY"
            stdout.write(f"Demo service {service_name}: {state}\n")
