"""`python -m src`: runs the service once on input/data.json and input/params.json.

Prints the response as JSON, as the platform would return it, and exits with 1 on an
ErrorResponse so scripts can tell.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from .libs.return_objects import ErrorResponse
from .program import run

INPUT_DIR = Path(__file__).resolve().parent.parent / "input"


def _read(name: str) -> Any:
    path = INPUT_DIR / f"{name}.json"
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if text.strip() else {}


def main() -> int:
    """Run the service on the files in input/ and print its response."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    response = run(data=_read("data"), params=_read("params"))
    print(response.to_json() if hasattr(response, "to_json") else json.dumps(response))
    return 1 if isinstance(response, ErrorResponse) else 0


if __name__ == "__main__":
    sys.exit(main())
