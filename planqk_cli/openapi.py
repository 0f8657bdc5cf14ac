"""``planqk openapi``: write ``openapi-spec.yml`` from the examples in ``input/``.

As PlanQK's ``create-openapi`` does, the ``data`` and ``params`` schemas are inferred from
``input/data.json`` and ``input/params.json``: types (``integer`` where every example is whole),
arrays' item types, nested objects, and the examples themselves as ``example``. The rest of the
spec (paths, the job object, errors, security) is the template's, so the file describes the
whole service API. An existing file is only replaced with ``--force``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from planqk_cli import term
from planqk_cli.errors import ExitCode, FileProblem

#: Nesting deeper than this is described as "any value" (the example still shows it).
MAX_DEPTH = 32


def infer_schema(value: Any, *, depth: int = 0) -> dict[str, Any]:
    """An OpenAPI 3.0 schema that ``value`` (a parsed JSON example) matches."""
    if depth > MAX_DEPTH:
        return {}
    if value is None:
        return {"nullable": True}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        schema: dict[str, Any] = {"type": "array"}
        items = [infer_schema(item, depth=depth + 1) for item in value]
        schema["items"] = _merge(items) if items else {}
        return schema
    if isinstance(value, dict):
        return {
            "type": "object",
            "properties": {str(key): infer_schema(item, depth=depth + 1) for key, item in value.items()},
        }
    return {}


def _merge(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """One schema for all items of an array: equal ones stay, integers and numbers are numbers,
    objects merge their properties; anything else mixed is any value."""
    nullable = any(s == {"nullable": True} for s in schemas)
    typed = [s for s in schemas if s != {"nullable": True}]
    if not typed:
        return {"nullable": True}
    types = {s.get("type") for s in typed}
    if types <= {"integer", "number"}:
        merged: dict[str, Any] = {"type": "number" if "number" in types else "integer"}
    elif len(types) != 1 or None in types:
        return {}
    elif types == {"object"}:
        properties: dict[str, list[dict[str, Any]]] = {}
        for schema in typed:
            for key, prop in schema.get("properties", {}).items():
                properties.setdefault(key, []).append(prop)
        merged = {"type": "object", "properties": {key: _merge(props) for key, props in properties.items()}}
    elif types == {"array"}:
        merged = {"type": "array", "items": _merge([s.get("items", {}) for s in typed if s.get("items") != {}])}
        if merged["items"] == {"nullable": True} and all(s.get("items") == {} for s in typed):
            merged["items"] = {}
    else:
        merged = dict(typed[0])
    if nullable:
        merged["nullable"] = True
    return merged


def _read_example(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileProblem(f"{path} is missing", hint="Put an example of the input there (a JSON object).")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise FileProblem(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise FileProblem(f"{path} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise FileProblem(f"{path} must hold a JSON object, not {type(value).__name__}")
    return value


def spec_from_examples(
    data: dict[str, Any], params: dict[str, Any], *, title: str, result: Any = None
) -> dict[str, Any]:
    """The template's API spec with schemas inferred from the examples."""
    import yaml

    from planqk_template import template_files

    spec = yaml.safe_load(template_files(name=title)["openapi-spec.yml"])
    schemas = spec["components"]["schemas"]
    schemas["InputData"] = {
        **infer_schema(data),
        "description": "The input data of an execution (inferred from input/data.json).",
        "example": data,
    }
    schemas["InputParams"] = {
        **infer_schema(params),
        "description": "The parameters of an execution (inferred from input/params.json).",
        "example": params,
    }
    result_example = spec["paths"]["/{id}/result"]["get"]["responses"]["200"]["content"]["application/json"]
    if isinstance(result, dict):
        schemas["ResultData"] = {**infer_schema(result), "description": "What a successful execution returns.",
                                 "example": result}  # fmt: skip
        result_example["examples"]["result"]["value"] = {"result": result, "metadata": None}
    else:
        # Without an example result nothing is known about it: say so rather than keep the sum's.
        schemas["ResultData"] = {"type": "object", "description": "What a successful execution returns."}
        result_example["examples"].pop("result", None)
    spec["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["example"] = {
        "data": data,
        "params": params,
    }
    return spec


def openapi(args: argparse.Namespace) -> int:
    """Write openapi-spec.yml from input/data.json and input/params.json."""
    import yaml

    folder = Path.cwd()
    output = Path(args.output)
    if output.exists() and not args.force:
        raise FileProblem(
            f"{output} exists; it was not changed",
            hint="Run `planqk openapi --force` to replace it (your own edits of it are lost).",
        )
    data = _read_example(folder / args.data_file)
    params = _read_example(folder / args.params_file)
    result = None
    if args.result_file:
        path = folder / args.result_file
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FileProblem(f"cannot read {path} as JSON: {exc}") from exc
        if isinstance(result, dict) and isinstance(result.get("result"), dict):
            result = result["result"]  # the response `python -m src` prints
    spec = spec_from_examples(data, params, title=args.title or folder.name, result=result)
    text = (
        "# Written by `planqk openapi` from the examples in input/; describe the fields (description,\n"
        "# minimum, enum, required...) so the portal's form and input checks say what your service takes.\n"
        + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
    )
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise FileProblem(f"cannot write {output}: {exc.strerror or exc}") from exc
    term.success(f"Wrote {output} (data: {len(data)} fields, params: {len(params)} fields)")
    term.info("Next: add descriptions and limits to the schemas, then `planqk serve` or `planqk up`.")
    return ExitCode.OK
