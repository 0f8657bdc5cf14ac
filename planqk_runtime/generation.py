"""Which service contract a user code folder follows: the 2022 template or the current one.

Standard library only; reads the code (``ast``), never imports or runs it.

- ``"2022"`` (documented): ``run(data, params)``, the PlanQK user code template of 2022
  (``ARCHITECTURE.md`` section 2): input in ``data``/``params``, a ``ResultResponse`` back.
- ``"current"``: Kipu Quantum Hub's ``qhub-serve`` / ``qhub-commons`` convention: ``run()``
  declares typed parameters (pydantic models or simple types) bound by name from the request's
  top-level keys, its return value is the result, files it writes into ``OUTPUT_DIRECTORY``
  are result files, ``SecretValue`` parameters come from ``$secrets``.

Detection: a ``run`` whose parameters are exactly ``data`` and ``params`` with no annotation or
a plain dict/Any one is the 2022 template; any other signature (typed models, other names, no
parameters) is the current one. ``planqk.json``'s ``"generation"`` key (``"2022"`` or
``"current"``) overrides it, e.g. for a current service whose parameters happen to be called
``data`` and ``params`` and are plain dicts.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

DOCUMENTED = "2022"
CURRENT = "current"
GENERATIONS = (DOCUMENTED, CURRENT)
PROJECT_FILE = "planqk.json"
PROJECT_KEY = "generation"
PROGRAM = Path("src") / "program.py"
#: Annotations of ``data``/``params`` that still mean the 2022 template's plain JSON objects.
_PLAIN_ANNOTATION_WORDS = ("dict", "Dict", "Mapping", "Any", "Optional", "None", "Union")
_MODEL_HINTS = ("BaseModel", "SecretValue", "DataPool")


class GenerationError(ValueError):
    """``planqk.json`` names a generation that does not exist (or is not JSON)."""


@dataclass(frozen=True)
class Detected:
    generation: str
    reason: str


def _from_project(source_dir: Path) -> Detected | None:
    path = source_dir / PROJECT_FILE
    if not path.is_file() or path.is_symlink():
        return None
    try:
        project = json.loads(path.read_text(encoding="utf-8-sig") or "{}")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise GenerationError(f"{PROJECT_FILE} is not readable JSON: {exc}") from None
    if not isinstance(project, dict) or PROJECT_KEY not in project:
        return None
    value = project[PROJECT_KEY]
    if value not in GENERATIONS:
        raise GenerationError(
            f'{PROJECT_FILE}: "{PROJECT_KEY}" must be "{DOCUMENTED}" or "{CURRENT}", not {json.dumps(value)}'
        )
    return Detected(str(value), f'{PROJECT_FILE} says "{PROJECT_KEY}": "{value}"')


def _plain(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return True
    text = ast.unparse(annotation)
    if any(hint in text for hint in _MODEL_HINTS):
        return False
    names = {node.id for node in ast.walk(annotation) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(annotation) if isinstance(node, ast.Attribute)}
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        # A string annotation ("Dict[str, Any]"): look at the words it is made of.
        return all(word in _PLAIN_ANNOTATION_WORDS or word in ("str", "typing") for word in _words(annotation.value))
    return bool(names) and names <= {*_PLAIN_ANNOTATION_WORDS, "str", "typing", "int", "float", "bool", "object"}


def _words(text: str) -> list[str]:
    out, word = [], ""
    for char in text:
        if char.isalnum() or char == "_":
            word += char
        else:
            if word:
                out.append(word)
            word = ""
    return [*out, word] if word else out


def _from_signature(source_dir: Path) -> Detected:
    path = source_dir / PROGRAM
    try:
        tree = ast.parse(path.read_text(encoding="utf-8-sig"), filename=str(PROGRAM))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        # The build's smoke test reports unreadable code; the documented contract is the default.
        return Detected(DOCUMENTED, f"{PROGRAM} cannot be read here; the 2022 template is assumed")
    run = next(
        (node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "run"),
        None,
    )
    if run is None:
        return Detected(DOCUMENTED, f"{PROGRAM} defines no run() at its top level; the 2022 template is assumed")
    arguments = [*run.args.posonlyargs, *run.args.args, *run.args.kwonlyargs]
    names = [arg.arg for arg in arguments]
    if names == ["data", "params"] and all(_plain(arg.annotation) for arg in arguments):
        return Detected(DOCUMENTED, "run(data, params): the 2022 template")
    shown = ", ".join(ast.unparse(arg) for arg in arguments)
    return Detected(CURRENT, f"run({shown}): typed parameters, the current generation")


def detect(source_dir: Path) -> Detected:
    """The generation of the user code in ``source_dir`` (the folder holding ``src/``) and why.

    Raises :class:`GenerationError` when ``planqk.json`` names an unknown generation.
    """
    return _from_project(source_dir) or _from_signature(source_dir)
