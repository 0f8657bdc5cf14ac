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

import re

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
