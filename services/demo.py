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
#: Published in the marketplace as soon as their build is READY, with these plans beside Free:
#: (name, kind, price in cents, requests per minute, concurrent executions).
PUBLISH_MARKETPLACE = {
    "sum": [("Pay as you go", "PER_EXECUTION", 5, 120, 5)],
    "qiskit_bell": [("Per shot batch", "PER_EXECUTION", 20, 60, 3)],
    "dwave_qubo": [("Research", "MONTHLY", 900, 120, 5)],
}


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
        if sample_name in PUBLISH_MARKETPLACE:
            _add_plans(service, user, PUBLISH_MARKETPLACE[sample_name])
            if service.lifecycle == Lifecycle.CREATED:
                service = services.service_publish_when_ready(service=service, lifecycle=Lifecycle.PUBLISHED)
                state = (
                    "in the marketplace" if service.lifecycle != Lifecycle.CREATED else "in the marketplace once READY"
                )
                stdout.write(f"Demo service {service_name}: {state}\n")


def _add_plans(service: Service, user: Any, plans: list[tuple[str, str, int, int, int]]) -> None:
    """The demo's paid plans, once (a plan of that name already there is left as it is)."""
    from marketplace.services import plan_terms_check, pricing_plan_create

    for name, kind, price, per_minute, concurrent in plans:
        if service.plans.filter(name=name).exists():
            continue
        terms = plan_terms_check(
            name=name, kind=kind, price_cents=price, requests_per_minute=per_minute, max_concurrent=concurrent
        )
        pricing_plan_create(service=service, actor=user, terms=terms)
