"""Create Job's form fields made from a service's ``data``/``params`` schemas.

Server-rendered, so the form works without JavaScript; the HTML constraint attributes
(``type=number``, ``min``, ``max``, ``step``, ``required``, ``pattern``...) let the browser refuse a
bad value on its field before anything is sent. What a field cannot express (``oneOf``, arrays of
objects, maps) becomes a small JSON box inside the form; the whole input also has a JSON mode.
The server parses the fields back into a JSON value, then admission checks it against the
schema as on every other road, and its 422 errors are placed on the fields they name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

#: The prefix of every schema field's input name, e.g. ``sf:params.shots``.
PREFIX = "sf:"
MAX_DEPTH = 4
MAX_FIELDS = 200

_NUMBER = r"[\-+]?(\d+(\.\d*)?|\.\d+)([eE][\-+]?\d+)?"
_INTEGER = r"[\-+]?\d+"
# HTML patterns match the whole value (and Chromium compiles them with the v flag: "-" escaped).
LIST_PATTERNS = {
    "number": rf"\s*({_NUMBER}(\s*,\s*{_NUMBER})*)?\s*,?\s*",
    "integer": rf"\s*({_INTEGER}(\s*,\s*{_INTEGER})*)?\s*,?\s*",
}
_INPUT_TYPES_BY_FORMAT = {"email": "email", "date": "date", "uri": "url"}
_REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property$")


@dataclass
class SchemaField:
    """One field of the form; an ``object`` holds its properties as ``children``."""

    path: str  # "params.shots": the input name is PREFIX + path, 422 paths map onto it
    label: str
    kind: str  # integer | number | string | text | boolean | enum | list | json | object
    required: bool = False
    description: str = ""
    attrs: list[tuple[str, str]] = field(default_factory=list)
    choices: list[tuple[str, str]] = field(default_factory=list)
    item_kind: str = ""  # of a list: number | integer | string
    placeholder: str = ""
    children: list[SchemaField] = field(default_factory=list)
    value: str = ""
    checked: bool = False
    errors: list[str] = field(default_factory=list)
    nullable: bool = False

    @property
    def name(self) -> str:
        return PREFIX + self.path

    @property
    def id(self) -> str:
        return "sf-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.path)

    def walk(self) -> list[SchemaField]:
        found = [self]
        for child in self.children:
            found += child.walk()
        return found


def _resolve(schema: Any, components: Any) -> Any:
    """Follow internal ``$ref``s to ``#/components/...`` (a few hops at most)."""
    for _ in range(10):
        if not isinstance(schema, dict) or not isinstance(schema.get("$ref"), str):
            return schema
        target: Any = {"components": components}
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) else None
        schema = target
    return schema


def _type_of(schema: dict[str, Any]) -> tuple[str | None, bool]:
    """The schema's type and whether null is allowed (OpenAPI 3.0 ``nullable`` or 3.1 lists)."""
    raw = schema.get("type")
    nullable = bool(schema.get("nullable"))
    if isinstance(raw, list):
        nullable = nullable or "null" in raw
        rest = [t for t in raw if t != "null"]
        raw = rest[0] if len(rest) == 1 else None
    if raw is None and isinstance(schema.get("properties"), dict):
        raw = "object"
    return (raw if isinstance(raw, str) else None), nullable


def _label(name: str) -> str:
    return name.replace("_", " ").strip().capitalize() or name


def _number_attrs(schema: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    attrs = []
    for key, attr in (("minimum", "min"), ("maximum", "max")):
        bound = schema.get(key)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            attrs.append((attr, _num(bound)))
    for key, attr in (("exclusiveMinimum", "min"), ("exclusiveMaximum", "max")):
        bound = schema.get(key)  # OpenAPI 3.1: a number (3.0's booleans only qualify the bound above)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            attrs.append((attr, _num(bound)))
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
        attrs.append(("step", _num(step)))
    else:
        attrs.append(("step", "1" if kind == "integer" else "any"))
    return attrs


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _field(name: str, path: str, schema: Any, *, required: bool, components: Any, depth: int) -> SchemaField:
    schema = _resolve(schema, components)
    if not isinstance(schema, dict):
        schema = {}
    kind, nullable = _type_of(schema)
    description = str(schema.get("description") or schema.get("title") or "")
    made = SchemaField(
        path=path,
        label=str(schema.get("title") or _label(name)),
        kind="json",
        required=required,
        description=description,
        nullable=nullable,
    )
    if "default" in schema:
        made.placeholder = json.dumps(schema["default"]) if kind not in ("string", None) else str(schema["default"])
    if isinstance(schema.get("enum"), list) and schema["enum"] and not any(k in schema for k in ("oneOf", "anyOf")):
        made.kind = "enum"
        made.choices = [(json.dumps(v), str(v) if not isinstance(v, bool) else json.dumps(v)) for v in schema["enum"]]
        if not required or "default" not in schema:
            made.choices.insert(0, ("", "(not set)" if not required else "Choose…"))
        if "default" in schema:
            made.value = json.dumps(schema["default"])
        if required:
            made.attrs.append(("required", ""))
        return made
    if any(key in schema for key in ("oneOf", "anyOf", "allOf", "not")):
        if required:
            made.attrs.append(("required", ""))
        return made  # the form cannot express these: a JSON box
    if kind in ("integer", "number"):
        made.kind = kind
        made.attrs = _number_attrs(schema, kind)
    elif kind == "boolean":
        made.kind = "boolean"
        made.checked = schema.get("default") is True
    elif kind == "string":
        made.kind = "string"
        input_type = _INPUT_TYPES_BY_FORMAT.get(str(schema.get("format") or ""), "text")
        made.attrs = [("type", input_type)]
        for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
            if isinstance(schema.get(key), int) and not isinstance(schema[key], bool):
                made.attrs.append((attr, str(schema[key])))
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and pattern:
            made.attrs.append(("pattern", f".*(?:{pattern}).*"))
    elif kind == "array":
        items = _resolve(schema.get("items"), components)
        item_kind = _type_of(items)[0] if isinstance(items, dict) else None
        plain_items = isinstance(items, dict) and not any(k in items for k in ("enum", "oneOf", "anyOf", "allOf"))
        if plain_items and item_kind in ("number", "integer"):
            made.kind, made.item_kind = "list", item_kind
            made.attrs = [("pattern", LIST_PATTERNS[item_kind]), ("inputmode", "decimal")]
            made.description = description or f"{'Numbers' if item_kind == 'number' else 'Whole numbers'}, "
            made.description += "" if description else "separated by commas."
        elif plain_items and item_kind == "string":
            made.kind, made.item_kind = "list", "string"
            made.description = description or "One value per line."
    elif kind == "object" and depth < MAX_DEPTH and isinstance(schema.get("properties"), dict):
        made.kind = "object"
        required_names = set(schema.get("required") or [])
        for child_name, child_schema in schema["properties"].items():
            made.children.append(
                _field(
                    str(child_name),
                    f"{path}.{child_name}",
                    child_schema,
                    required=required and child_name in required_names,
                    components=components,
                    depth=depth + 1,
                )
            )
    if made.kind in ("integer", "number", "string", "list", "json") and required:
        made.attrs.append(("required", ""))
    return made


def build_fields(schema: dict[str, Any] | None, *, root: str) -> SchemaField | None:
    """The form of one input (``root`` is ``"data"`` or ``"params"``), or None when the schema
    describes no properties the form could show (then the JSON mode is the way)."""
    if not isinstance(schema, dict):
        return None
    components = schema.get("components")
    resolved = _resolve(schema, components)
    if not isinstance(resolved, dict) or not isinstance(resolved.get("properties"), dict):
        return None
    if not resolved["properties"]:
        return None
    tree = _field(root, root, resolved, required=True, components=components, depth=0)
    if tree.kind != "object" or len(tree.walk()) > MAX_FIELDS:
        return None
    return tree


# --- values into the fields ---------------------------------------------------------------------


def fill(tree: SchemaField, value: Any) -> bool:
    """Show ``value`` in the fields; False when some of it has no field (then JSON mode suits)."""
    return _fill(tree, value)


def _fill(item: SchemaField, value: Any) -> bool:
    if item.kind == "object":
        if not isinstance(value, dict):
            return value is None
        known = {child.path.rsplit(".", 1)[-1]: child for child in item.children}
        fits = all(key in known for key in value)
        for key, child in known.items():
            if key in value:
                fits = _fill(child, value[key]) and fits
        return fits
    if value is None:
        return item.nullable
    if item.kind == "boolean":
        item.checked = value is True
        return isinstance(value, bool)
    if item.kind == "enum":
        item.value = json.dumps(value)
        return item.value in {choice for choice, _ in item.choices}
    if item.kind in ("integer", "number"):
        item.value = json.dumps(value)
        return isinstance(value, int | float) and not isinstance(value, bool)
    if item.kind == "string":
        item.value = value if isinstance(value, str) else json.dumps(value)
        return isinstance(value, str)
    if item.kind == "list":
        if not isinstance(value, list):
            item.value = json.dumps(value)
            return False
        if item.item_kind == "string":
            item.value = "\n".join(str(v) for v in value)
            return all(isinstance(v, str) and "\n" not in v for v in value)
        item.value = ", ".join(json.dumps(v) for v in value)
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    item.value = json.dumps(value, indent=2)
    return True


def fill_from_post(tree: SchemaField, post: Any) -> None:
    """Show what was submitted again (after an error)."""
    for item in tree.walk():
        if item.kind == "boolean":
            item.checked = bool(post.get(item.name))
        elif item.kind != "object":
            item.value = post.get(item.name, "")


# --- the submitted fields back into JSON --------------------------------------------------------


def parse(tree: SchemaField, post: Any) -> tuple[Any, bool]:
    """``(value, ok)`` from the submitted fields; a field that cannot be read gets its error."""
    fill_from_post(tree, post)
    value, _present = _parse(tree)
    return value, not any(item.errors for item in tree.walk())


def _parse(item: SchemaField) -> tuple[Any, bool]:
    """``(value, present)``: absent fields are left out of the JSON (the service's default)."""
    if item.kind == "object":
        result = {}
        for child in item.children:
            value, present = _parse(child)
            if present:
                result[child.path.rsplit(".", 1)[-1]] = value
        return result, bool(result) or item.required
    if item.kind == "boolean":
        # An unchecked box is false where false means something (a default or a required field).
        if item.checked:
            return True, True
        return False, item.required or bool(item.placeholder)
    text = item.value.strip()
    if not text:
        if item.required and item.kind not in ("enum",):
            item.errors.append("This field is required.")
        return None, False
    try:
        if item.kind == "enum":
            return json.loads(text), True
        if item.kind == "integer":
            return int(text), True
        if item.kind == "number":
            return _number(text), True
        if item.kind == "string":
            return item.value, True
        if item.kind == "list":
            if item.item_kind == "string":
                return [line.strip() for line in item.value.splitlines() if line.strip()], True
            parts = [part.strip() for part in text.split(",") if part.strip()]
            return [int(p) if item.item_kind == "integer" else _number(p) for p in parts], True
        return json.loads(text), True
    except (ValueError, RecursionError):
        item.errors.append(_unreadable(item))
        return None, False


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        number = float(text)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(text)
    return number


def _unreadable(item: SchemaField) -> str:
    return {
        "integer": "Enter a whole number.",
        "number": "Enter a number.",
        "list": "Enter whole numbers separated by commas."
        if item.item_kind == "integer"
        else "Enter numbers separated by commas.",
    }.get(item.kind, "Enter valid JSON.")


# --- 422 errors onto their fields ---------------------------------------------------------------


def place_errors(tree: SchemaField | None, errors: list[dict[str, str]]) -> list[str]:
    """Put each ``{"path", "message"}`` on the field it names; returns what found no field."""
    by_path = {item.path: item for item in tree.walk()} if tree is not None else {}
    unplaced = []
    for error in errors:
        path, message = str(error.get("path", "")), str(error.get("message", ""))
        match = _REQUIRED.match(message)
        if match and f"{path}.{match['name']}" in by_path:
            by_path[f"{path}.{match['name']}"].errors.append("This field is required.")
            continue
        target = _nearest(by_path, path)
        if target is None or (target is tree and tree is not None):
            unplaced.append(f"{path}: {message}")
        else:
            target.errors.append(_with_index(path, target.path, message))
    return unplaced


def _nearest(by_path: dict[str, SchemaField], path: str) -> SchemaField | None:
    while path:
        if path in by_path:
            return by_path[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            return None
        path = path[:cut]
    return None


def _with_index(path: str, field_path: str, message: str) -> str:
    rest = path[len(field_path) :]
    return f"{rest.lstrip('.')}: {message}" if rest else message
