#!/usr/bin/env python
"""Print where a pytest run spent its time, from its JUnit XML (``.ci/run`` calls it at the end,
so a CI log shows it next to the 30-minute budget): per test folder, and the slowest cases."""

from __future__ import annotations

import sys
from collections import defaultdict
from xml.etree import ElementTree


def main(path: str) -> int:
    # Our own pytest run's report, written moments ago: not outside input.
    cases = ElementTree.parse(path).getroot().iter("testcase")  # noqa: S314
    by_folder: dict[str, float] = defaultdict(float)
    slowest: list[tuple[float, str]] = []
    total = 0.0
    for case in cases:
        seconds = float(case.get("time") or 0)
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        folder = ".".join(name.split(".")[:2])
        by_folder[folder] += seconds
        slowest.append((seconds, name))
        total += seconds
    print(f"total {total / 60:.1f} min in {len(slowest)} cases")
    for folder, seconds in sorted(by_folder.items(), key=lambda item: -item[1]):
        print(f"{seconds / 60:6.1f} min  {folder}")
    print("slowest cases:")
    for seconds, name in sorted(slowest, reverse=True)[:20]:
        print(f"{seconds:7.1f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
