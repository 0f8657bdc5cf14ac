"""`python -m src`: runs the service once on input/input.json, as the platform would.

Each top-level key of the input file is bound to the run() parameter of the same name; the
result is printed as JSON and result files land in ./out (or $OUTPUT_DIRECTORY).
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
import typing
from pathlib import Path

from .program import run

INPUT_FILE = Path(__file__).resolve().parent.parent / "input" / "input.json"


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    request = json.loads(INPUT_FILE.read_text(encoding="utf-8") or "{}")
    hints = typing.get_type_hints(run)
    arguments = {}
    for name in inspect.signature(run).parameters:
        if name in request:
            validate = getattr(hints.get(name), "model_validate", None)
            arguments[name] = validate(request[name]) if callable(validate) else request[name]
    result = run(**arguments)
    dump = getattr(result, "model_dump", None)
    print(json.dumps(dump(mode="json") if callable(dump) else result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
