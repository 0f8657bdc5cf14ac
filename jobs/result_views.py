"""Results drawn: which view suits a result, and the data that view needs.

Detection looks for the common shapes of quantum results: measurement counts (a histogram of
bitstrings), samples or solutions with energies (a table, best first), a list of numbers (a
line); anything else is a collapsible JSON tree. A provider names the view where detection would
guess wrong with ``x-planqk-view: histogram|table|line|json`` on the result schema of the spec
(``ResultData``, or the ``result`` property of the ``GET /{id}/result`` response). Used by the
job page and the data pool file preview; the charts are drawn by ``jobs/results.js``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

VIEWS = ("histogram", "table", "line", "json")
HINT_KEY = "x-planqk-view"
#: Bars drawn at most (the most frequent), rows of a table, points of a line, nodes of a JSON tree.
MAX_BARS = 256
MAX_ROWS = 500
MAX_POINTS = 5000
MAX_TREE_NODES = 2000

_BITSTRING = re.compile(r"^(?:[01]+(?: [01]+)*|0x[0-9a-fA-F]+)$")
_SAMPLE_LISTS = ("samples", "solutions", "records", "results")


@dataclass
class ResultView:
    """What to draw: ``kind`` and its data (counts, rows, points), and where in the result."""

    kind: str
    key: str = ""  # the result's property it draws ("" for the result itself)
    chart: dict[str, Any] = field(default_factory=dict)  # for the chart script (json_script)
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    rows_cut: int = 0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_counts(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and _BITSTRING.match(k) for k in value)
        and all(_is_number(v) and v >= 0 for v in value.values())
    )


def _is_numbers(value: Any) -> bool:
    return isinstance(value, list) and len(value) >= 2 and all(_is_number(v) for v in value)


def _sample_rows(value: Any) -> list[dict[str, Any]] | None:
    """Rows of samples with energies: ``[{"sample": {...}, "energy": e}, ...]`` or one such object."""
    if isinstance(value, dict) and "energy" in value and _is_number(value["energy"]):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(row, dict) for row in value):
        return None
    if not all(_is_number(row.get("energy")) for row in value):
        return None
    return value


def _find(result: Any, test: Any) -> tuple[str, Any] | None:
    """The result itself or one of its top-level properties that passes ``test``."""
    if test(result):
        return "", result
    if isinstance(result, dict):
        for key in ("counts", *_SAMPLE_LISTS):
            if key in result and test(result[key]):
                return key, result[key]
        for key, value in result.items():
            if test(value):
                return str(key), value
    return None


def _histogram(key: str, counts: dict[str, float]) -> ResultView:
    total = sum(counts.values()) or 1
    top = sorted(counts.items(), key=lambda item: -item[1])[:MAX_BARS]
    bars = sorted(top, key=lambda item: (len(item[0]), item[0]))  # bitstrings in order
    rows = [{"outcome": k, "count": v, "probability": round(v / total, 6)} for k, v in bars]
    return ResultView(
        kind="histogram",
        key=key,
        chart={"labels": [k for k, _ in bars], "counts": [v for _, v in bars], "total": total},
        columns=["outcome", "count", "probability"],
        rows=rows,
        rows_cut=max(0, len(counts) - len(bars)),
    )


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    import json

    return json.dumps(value, ensure_ascii=False)


def _table(key: str, samples: list[dict[str, Any]]) -> ResultView:
    ordered = sorted(samples, key=lambda row: row["energy"])[:MAX_ROWS]
    rows: list[dict[str, Any]] = []
    columns: list[str] = ["energy"]
    for row in ordered:
        flat: dict[str, Any] = {}
        for name, value in row.items():
            if name == "sample" and isinstance(value, dict):
                for variable, bit in value.items():
                    flat[f"x{variable}" if str(variable).isdigit() else str(variable)] = _cell(bit)
            else:
                flat[str(name)] = _cell(value)
        for name in flat:
            if name not in columns:
                columns.append(name)
        rows.append(flat)
    return ResultView(kind="table", key=key, columns=columns, rows=rows, rows_cut=max(0, len(samples) - len(rows)))


def _generic_table(key: str, value: Any) -> ResultView | None:
    if not isinstance(value, list) or not value or not all(isinstance(row, dict) for row in value):
        return None
    columns: list[str] = []
    for row in value[:MAX_ROWS]:
        for name in row:
            if str(name) not in columns:
                columns.append(str(name))
    rows = [{str(k): _cell(v) for k, v in row.items()} for row in value[:MAX_ROWS]]
    return ResultView(kind="table", key=key, columns=columns, rows=rows, rows_cut=max(0, len(value) - len(rows)))


def _line(key: str, numbers: list[float]) -> ResultView:
    points = numbers[:MAX_POINTS]
    return ResultView(kind="line", key=key, chart={"labels": list(range(len(points))), "values": points})


def choose_view(result: Any, *, hint: str | None = None) -> ResultView:
    """The view of ``result``: the provider's ``hint`` when the result has that shape, else detection."""
    hint = hint if hint in VIEWS else None
    if hint == "json":
        return ResultView(kind="json")
    found_counts = _find(result, _is_counts)
    found_samples = _find(result, lambda v: _sample_rows(v) is not None)
    found_numbers = _find(result, _is_numbers)
    if hint == "table":
        if found_samples:
            return _table(found_samples[0], _sample_rows(found_samples[1]) or [])
        generic = _find(result, lambda v: _generic_table("", v) is not None)
        if generic:
            return _generic_table(*generic) or ResultView(kind="json")
    if hint == "line" and found_numbers:
        return _line(*found_numbers)
    if hint == "histogram" and found_counts:
        return _histogram(*found_counts)
    if found_counts and found_counts[0] in ("", "counts"):
        return _histogram(*found_counts)
    if found_samples:  # before counts under other keys: a sample {"0": 1, "1": 0} looks like counts
        return _table(found_samples[0], _sample_rows(found_samples[1]) or [])
    if found_counts:
        return _histogram(*found_counts)
    if found_numbers:
        return _line(*found_numbers)
    return ResultView(kind="json")


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    for _ in range(10):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        node = target
    return node


def view_hint(spec: Any) -> str | None:
    """``x-planqk-view`` of the spec's result schema, if the provider named one."""
    if not isinstance(spec, dict):
        return None
    candidates: list[Any] = []
    response = spec.get("paths", {}).get("/{id}/result", {}) if isinstance(spec.get("paths"), dict) else {}
    media = (
        response.get("get", {}).get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
        if isinstance(response, dict)
        else {}
    )
    schema = _resolve(spec, media.get("schema")) if isinstance(media, dict) else None
    if isinstance(schema, dict):
        candidates.append(schema)
        for option in (schema.get("oneOf") or []) + (schema.get("anyOf") or []):
            candidates.append(_resolve(spec, option))
    for candidate in list(candidates):
        if isinstance(candidate, dict) and isinstance(candidate.get("properties"), dict):
            candidates.insert(0, _resolve(spec, candidate["properties"].get("result")))
    schemas = spec.get("components", {}).get("schemas", {}) if isinstance(spec.get("components"), dict) else {}
    if isinstance(schemas, dict):
        candidates.append(schemas.get("ResultData"))
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get(HINT_KEY) in VIEWS:
            return candidate[HINT_KEY]
    return None


def interim_chart(items: list[tuple[float, Any]]) -> dict[str, Any] | None:
    """Interim results as series over time: every numeric property that changes, by seconds since
    the first one (``items`` are ``(seconds, payload)``). None when nothing numeric changes."""
    series: dict[str, list[Any]] = {}
    for index, (_, payload) in enumerate(items):
        values = payload if isinstance(payload, dict) else {"value": payload}
        for name, value in values.items():
            if _is_number(value):
                series.setdefault(str(name), [None] * len(items))[index] = value
    changing = {name: values for name, values in series.items() if len({v for v in values if v is not None}) > 1}
    if not changing:
        return None
    return {"seconds": [round(seconds, 3) for seconds, _ in items], "series": changing}


def json_tree(value: Any) -> list[dict[str, Any]]:
    """A flat list of nodes for the collapsible JSON tree template (opening and closing markers)."""
    nodes: list[dict[str, Any]] = []
    budget = [MAX_TREE_NODES]
    _tree(value, "", nodes, budget, depth=0)
    return nodes


def _tree(value: Any, label: str, nodes: list[dict[str, Any]], budget: list[int], *, depth: int) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        if budget[0] == -1:
            nodes.append({"type": "cut"})
        return
    if isinstance(value, dict | list) and value:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        kind = "object" if isinstance(value, dict) else "array"
        nodes.append({"type": "open", "label": label, "kind": kind, "size": len(value), "open": depth < 2})
        for key, item in items:
            _tree(item, str(key), nodes, budget, depth=depth + 1)
        nodes.append({"type": "close"})
        return
    import json

    nodes.append({"type": "leaf", "label": label, "value": json.dumps(value, ensure_ascii=False)[:500]})
