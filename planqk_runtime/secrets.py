"""Secrets of a current-generation execution: how a ``$secrets`` name becomes a variable.

Standard library only. The convention is Kipu Quantum Hub's (``qhub-commons`` /
``planqk-commons``, ``parameters.parameter_name_to_env_var``): the request's ``$secrets``
object maps names to strings, the platform puts each into the program's environment as
``SECRET_<NAME>``, with a camelCase or snake_case name in upper snake case (``ibmToken`` and
``ibm_token`` both become ``SECRET_IBM_TOKEN``, ``API_KEY`` stays ``SECRET_API_KEY``), and a
``run()`` parameter annotated ``SecretValue`` is bound from that variable. The platform (the
engine) and the runner both use :func:`env_name`, so the two sides cannot disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

#: What a secret's name may be: it must become an environment variable's name.
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
PREFIX = "SECRET_"
_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")


def env_name(name: str) -> str:
    """The environment variable a secret (or a ``SecretValue`` parameter) called ``name`` is in."""
    if name.upper() == name:
        return f"{PREFIX}{name}"
    return f"{PREFIX}{_CAMEL_RE.sub('_', name).upper()}"


def environment(secrets: dict[str, str]) -> dict[str, str]:
    """The variables that carry ``secrets`` into the program."""
    return {env_name(name): value for name, value in secrets.items()}


# --- what a request may send (admission and ``planqk serve`` check with these) ------------------

SECRETS_MAX = 32
SECRET_VALUE_MAX_BYTES = 16 * 1024
TAGS_MAX = 20
TAG_MAX_CHARS = 100


def clean_secrets(secrets: object) -> dict[str, str]:
    """``$secrets``: an object of names to strings; ``ValueError`` saying what is wrong otherwise."""
    if secrets is None:
        return {}
    if not isinstance(secrets, dict):
        raise ValueError("$secrets must be an object of names and strings.")
    if len(secrets) > SECRETS_MAX:
        raise ValueError(f"At most {SECRETS_MAX} secrets per execution.")
    cleaned = {}
    for name, value in secrets.items():
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ValueError(
                "Secret names are letters, digits and underscores, starting with a letter or underscore "
                "(at most 64 characters)."
            )
        size = len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else 0
        if not isinstance(value, str) or "\x00" in value or size > SECRET_VALUE_MAX_BYTES:
            raise ValueError(
                f"The secret {name!r} must be a string of at most {SECRET_VALUE_MAX_BYTES} bytes, without NUL."
            )
        cleaned[name] = value
    return cleaned


def clean_tags(tags: object) -> list[str]:
    """``$tags``: a list of short printable strings; ``ValueError`` otherwise."""
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError("$tags must be a list of strings.")
    if len(tags) > TAGS_MAX or any(len(tag) > TAG_MAX_CHARS or not tag.isprintable() for tag in tags):
        raise ValueError(f"At most {TAGS_MAX} tags of at most {TAG_MAX_CHARS} printable characters.")
    return list(tags)


class Redactor:
    """Replaces every secret value in a text with ``[redacted]`` (what ``SecretValue`` prints).

    For whole lines (the platform stores output line by line, so a value is never split between
    two calls); a value with line breaks is redacted line by line. Also its JSON-escaped form (a
    program printing a dict or JSON holding it) and its repr.
    """

    MASK = "[redacted]"

    def __init__(self, values: Iterable[str]) -> None:
        needles: set[str] = set()
        for value in values:
            for part in str(value).splitlines() or [str(value)]:
                if part:
                    needles.update({part, json.dumps(part)[1:-1], repr(part)[1:-1]})
        self.needles = sorted(needles, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for needle in self.needles:
            if needle in text:
                text = text.replace(needle, self.MASK)
        return text
