"""Terminal output: colours, tables, a progress line and prompts, with plain ANSI escapes.

Results (tables, JSON, URLs) go to stdout so they can be piped; progress, logs and messages go
to stderr. Colour and the animated progress line only appear on a terminal (and never with
``NO_COLOR`` set or ``TERM=dumb``); elsewhere progress is one plain line per change.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import unicodedata
from collections.abc import Sequence
from typing import IO, Any

from planqk_cli.errors import UsageError

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def is_tty(stream: IO[str]) -> bool:
    """True when ``stream`` is an interactive terminal."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def use_color(stream: IO[str]) -> bool:
    """Colour only on a terminal that wants it (https://no-color.org)."""
    return is_tty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def style(text: str, *codes: str, stream: IO[str] | None = None) -> str:
    """``text`` wrapped in SGR codes (``"1"`` bold, ``"2"`` dim, ``"31"`` red...) when colour is on."""
    if not codes or not use_color(stream or sys.stdout):
        return text
    return f"\033[{';'.join(codes)}m{text}\033[0m"


def info(message: str) -> None:
    """A message for the user (stderr)."""
    print(message, file=sys.stderr, flush=True)


def success(message: str) -> None:
    info(style("✔ ", "32", stream=sys.stderr) + message)


def warn(message: str) -> None:
    info(style("Warning: ", "33", "1", stream=sys.stderr) + message)


def error(message: str, hint: str | None = None) -> None:
    """``Error: message`` and the hint on the next line (stderr)."""
    info(style("Error: ", "31", "1", stream=sys.stderr) + message)
    if hint:
        info(style(hint, "2", stream=sys.stderr))


def _width(text: str) -> int:
    # East Asian wide characters take two cells; combining marks none.
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, stream: IO[str] | None = None) -> None:
    """An aligned table with a bold header; ``-`` for empty cells."""
    out = stream or sys.stdout
    cells = [["-" if value in (None, "") else str(value) for value in row] for row in rows]
    widths = [_width(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], _width(value))

    def line(values: Sequence[str]) -> str:
        padded = [value + " " * (widths[i] - _width(value)) for i, value in enumerate(values)]
        return "  ".join(padded).rstrip()

    print(style(line(list(headers)), "1", stream=out), file=out)
    for row in cells:
        print(line(row), file=out)
    out.flush()


def status_color(status: str | None) -> tuple[str, ...]:
    """SGR codes for a build or job status."""
    return {
        "READY": ("32",),
        "SUCCEEDED": ("32",),
        "FAILED": ("31",),
        "CANCELLED": ("33",),
        "UNKNOWN": ("33",),
        "RUNNING": ("36",),
        "BUILDING": ("36",),
    }.get(status or "", ())


class Progress:
    """A status line with a spinner and the elapsed time, with log lines printed above it.

    On a terminal the line is redrawn in place by a small thread; elsewhere each new status is
    printed once, so logs of CI runs stay readable.
    """

    def __init__(self, label: str, *, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self.status = ""
        self.live = use_color(self.stream)
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._frame = 0
        self._drawn = False

    def __enter__(self) -> Progress:
        if self.live:
            self._thread = threading.Thread(target=self._spin, name="planqk-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._clear()

    def update(self, status: str) -> None:
        """Show a new status (printed as a line when not on a terminal)."""
        with self._lock:
            if status == self.status:
                return
            self.status = status
            if not self.live:
                print(f"{self.label}: {status}", file=self.stream, flush=True)
            else:
                self._draw()

    def log(self, text: str) -> None:
        """Print log text above the status line."""
        if not text:
            return
        with self._lock:
            self._clear()
            body = text if text.endswith("\n") else text + "\n"
            self.stream.write(style(body, "2", stream=self.stream) if self.live else body)
            if self.live:
                self._draw()
            self.stream.flush()

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self._started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def _spin(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                self._frame += 1
                self._draw()

    def _draw(self) -> None:
        frame = _SPINNER[self._frame % len(_SPINNER)]
        colored = style(self.status, *status_color(self.status), stream=self.stream)
        self.stream.write(
            f"\r\033[2K{style(frame, '36', stream=self.stream)} {self.label}: {colored}  {self.elapsed()}"
        )
        self.stream.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[2K")
            self.stream.flush()
            self._drawn = False


def prompt(question: str, *, default: str | None = None, choices: Sequence[str] | None = None) -> str:
    """Ask on the terminal; the default on an empty answer. UsageError when nobody can answer."""
    if not is_tty(sys.stdin):
        raise UsageError(
            f"{question.rstrip(':?')} is missing and there is no terminal to ask",
            hint="Give it as an option, or pass --silent to use the defaults.",
        )
    suffix = ""
    if choices:
        suffix += f" ({'/'.join(choices)})"
    if default is not None:
        suffix += f" [{default}]"
    while True:
        try:
            answer = input(f"{question}{suffix}: ").strip()
        except EOFError:
            raise UsageError(f"no answer for {question!r}") from None
        if not answer and default is not None:
            answer = default
        if choices:
            upper = answer.upper()
            if upper in choices:
                return upper
            info(f"Please answer one of {', '.join(choices)}.")
            continue
        if answer:
            return answer
