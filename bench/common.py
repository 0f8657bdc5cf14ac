"""Helpers shared by the benchmarks: percentiles, machine facts and the results table."""

from __future__ import annotations

import math
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100 * len(ordered)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def summary_ms(values_s: list[float]) -> dict[str, str]:
    """p50/p95/mean of durations given in seconds, formatted in milliseconds."""
    ms = [v * 1000 for v in values_s]
    return {
        "n": str(len(ms)),
        "p50 ms": f"{percentile(ms, 50):.1f}",
        "p95 ms": f"{percentile(ms, 95):.1f}",
        "mean ms": f"{statistics.fmean(ms):.1f}" if ms else "nan",
    }


def machine() -> str:
    """One line describing where the numbers were taken."""
    return (
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def write_table(
    name: str, title: str, rows: list[dict[str, str]], notes: str = "", *, path: Path | str | None = ""
) -> str:
    """Write bench/results/NAME.md (or ``path``; None: nowhere) as a Markdown table, print it and return it."""
    headers = list(rows[0]) if rows else []
    lines = [f"# {title}", "", machine(), ""]
    if rows:
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "---|" * len(headers))
        lines.extend("| " + " | ".join(str(row.get(h, "")) for h in headers) + " |" for row in rows)
    if notes:
        lines += ["", notes]
    text = "\n".join(lines) + "\n"
    if path is not None:
        target = Path(path) if path else RESULTS / f"{name}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    print(text)
    return text
