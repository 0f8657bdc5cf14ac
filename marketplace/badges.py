"""What a listing shows at a glance: the SDK (from the version's requirements) and the price from."""

from __future__ import annotations

import re
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
