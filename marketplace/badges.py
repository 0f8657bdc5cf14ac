"""What a listing shows at a glance: the quantum backend, the SDK (from the version's requirements)
and the price from. One function, :func:`listing_badges`, for the marketplace list, a service's
page and the publish flow's preview, so the three never disagree."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# A requirement's project name, as pip reads it: before any version, extra or marker.
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
SDKS = (
    ("Qiskit", ("qiskit",)),
    (
        "D-Wave Ocean",
        ("dwave-ocean-sdk", "dimod", "dwave-system", "dwave-neal", "dwave-samplers", "dwave-cloud-client"),
    ),
)


def _names(requirements: str) -> set[str]:
    names = set()
    for line in (requirements or "").splitlines():
        line = line.split("#", 1)[0]
        match = _NAME.match(line)
        if match and not line.lstrip().startswith("-"):
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def sdk_badges(requirements: str) -> list[str]:
    """The quantum SDKs a version uses (Qiskit, D-Wave Ocean), or plain Python when none."""
    names = _names(requirements)
    found = [
        label
        for label, packages in SDKS
        if any(name == package or name.startswith(f"{package}-") for name in names for package in packages)
    ]
    return found or ["Python"]


def price_from(plans: Any) -> int | None:
    """The lowest price of the active plans in cents (0 with a free plan); None without plans."""
    prices = [plan.price_cents if plan.is_paid else 0 for plan in plans if plan.is_active]
    return min(prices) if prices else None


@dataclass(frozen=True)
class ListingBadges:
    """The badges of one listing; ``price_from_label`` is "Free", an amount, or "" without plans."""

    backend: str
    sdks: list[str]
    price_from_cents: int | None
    price_from_label: str


def listing_badges(*, service: Any, version: Any, plans: Iterable[Any], currency: str) -> ListingBadges:
    """The badges of ``service`` as listed with ``version`` (its requirements name the SDK; None:
    no callable version) and ``plans`` (the active ones count)."""
    from payments.templatetags.money import money
    from services.models import QuantumBackend

    cents = price_from(plans)
    label = "" if cents is None else "Free" if cents == 0 else money(cents, currency)
    return ListingBadges(
        # Only real hardware gets a backend badge; the SDK badge says what runs locally.
        backend=service.get_quantum_backend_display() if service.quantum_backend != QuantumBackend.NONE else "",
        sdks=sdk_badges(version.requirements) if version is not None else [],
        price_from_cents=cents,
        price_from_label=label,
    )
