"""Template helpers for jobs: status badges and human-readable durations and sizes."""

from __future__ import annotations

from django import template

register = template.Library()

_ICONS = {
    "PENDING": ("⏳", "Pending"),
    "RUNNING": ("⟳", "Running"),
    "SUCCEEDED": ("✔", "Succeeded"),
    "FAILED": ("✖", "Failed"),
    "CANCELLED": ("⊘", "Cancelled"),
    "UNKNOWN": ("?", "Unknown"),
}


@register.inclusion_tag("jobs/includes/status_badge.html")
def job_status_badge(status: str) -> dict[str, str]:
    """An icon and a label for a job status."""
    icon, label = _ICONS.get(status, ("·", status))
    return {"status": status, "icon": icon, "label": label}


@register.filter
def seconds(value: float | None) -> str:
    """1.234 -> '1.23 s', 125 -> '2 min 5 s'."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.2f} s"
    minutes, rest = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def kilobytes(value: int | None) -> str:
    """Peak memory in KB, shown in MB."""
    if not value:
        return "-"
    return f"{value / 1024:.1f} MB"


@register.filter
def get_item(row: dict, key: str) -> object:
    """``row[key]`` in a template (a result table's cell), None when missing."""
    return row.get(key) if isinstance(row, dict) else None
