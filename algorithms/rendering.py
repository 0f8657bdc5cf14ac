"""Algorithm descriptions: Markdown sanitised by the service descriptions' helper, plus LaTeX formulas.

Formulas between ``$...$`` (inline) and ``$$...$$`` (display) are taken out before Markdown
runs (so ``_`` and ``*`` in them are not read as emphasis), the rest goes through
:func:`services.rendering.render_markdown` unchanged, and each formula comes back as an escaped
``<span class="math" data-display>`` whose text KaTeX (served from our static files) renders in
the browser. KaTeX builds its output with DOM calls, which the strict Content-Security-Policy
allows (no inline styles in markup, no eval).
"""

from __future__ import annotations

import re
import secrets

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from services.rendering import render_markdown

_MATH_RE = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![\\$])\$(?!\s)([^$\n]+?)(?<![\s\\])\$(?!\d)", re.DOTALL)
_FENCE_RE = re.compile(r"(^```.*?^```|`[^`\n]+`)", re.DOTALL | re.MULTILINE)


def render_description(text: str) -> SafeString:
    """Sanitised HTML of a Markdown description with its formulas marked for KaTeX."""
    token = secrets.token_hex(8)
    formulas: list[tuple[str, bool]] = []

    def take(match: re.Match[str]) -> str:
        display = match.group(1) is not None
        formulas.append(((match.group(1) if display else match.group(2)).strip(), display))
        return f"MATH{token}N{len(formulas) - 1}E"

    # Code stays code: split off fenced and inline code before looking for formulas.
    parts = _FENCE_RE.split(text or "")
    source = "".join(part if index % 2 else _MATH_RE.sub(take, part) for index, part in enumerate(parts))
    html = str(render_markdown(source))

    def put(match: re.Match[str]) -> str:
        tex, display = formulas[int(match.group(1))]
        tag = "div" if display else "span"
        mode = "display" if display else "inline"
        return f'<{tag} class="math" data-math="{mode}">{escape(tex)}</{tag}>'

    html = re.sub(rf"MATH{token}N(\d+)E", put, html)
    return mark_safe(html)  # noqa: S308 - the Markdown is sanitised; formulas are escaped text
