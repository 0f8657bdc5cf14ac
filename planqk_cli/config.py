"""Where the CLI keeps the portal's address and the personal access token.

``$XDG_CONFIG_HOME/planqk/config.json`` (default ``~/.config/planqk/config.json``), mode 600 in
a folder of mode 700: the token is a password. The token is only ever sent to the endpoint it
was stored with, so pointing ``--endpoint`` or ``PLANQK_ENDPOINT`` elsewhere cannot leak it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from planqk_cli.errors import FileProblem, NotLoggedIn, UsageError

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
ENDPOINT_ENV = "PLANQK_ENDPOINT"


@dataclass(frozen=True)
class Credentials:
    """A token and the portal it belongs to."""

    endpoint: str
    token: str


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/planqk``, else ``~/.config/planqk``."""
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    # The XDG spec says relative values are invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "planqk"


def config_path() -> Path:
    """The config file."""
    return config_dir() / "config.json"


def normalize_endpoint(value: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash; UsageError for anything else."""
    text = value.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"{value!r} is not a portal address",
            hint="Give it as http://HOST:PORT or https://HOST, e.g. --endpoint http://127.0.0.1:8000",
        )
    if parts.query or parts.fragment:
        raise UsageError(f"{value!r} is not a portal address (no ?query or #fragment, please)")
    return text


def load() -> Credentials | None:
    """The stored credentials, or None when there are none."""
    path = config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FileProblem(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FileProblem(f"{path} is not valid JSON ({exc})", hint="Run `planqk logout` and log in again.") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("token"), str)
        or not isinstance(data.get("endpoint"), str)
    ):
        raise FileProblem(f"{path} does not hold an endpoint and a token", hint="Run `planqk logout` and log in again.")
    return Credentials(endpoint=data["endpoint"], token=data["token"])


def save(credentials: Credentials) -> Path:
    """Store the credentials (mode 600, written atomically); returns the file's path."""
    folder = config_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written to a private temporary file first: no moment where the token is world-readable
        # or the file half-written.
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"endpoint": credentials.endpoint, "token": credentials.token}, handle, indent=2)
                handle.write("\n")
            os.chmod(tmp, 0o600)
            os.replace(tmp, config_path())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise FileProblem(f"cannot write {config_path()}: {exc.strerror or exc}") from exc
    return config_path()


def delete() -> bool:
    """Forget the stored credentials; True when there were any."""
    try:
        config_path().unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise FileProblem(f"cannot delete {config_path()}: {exc.strerror}") from exc
    return True


def resolve_endpoint(explicit: str | None, stored: Credentials | None = None) -> str:
    """The portal to talk to: ``--endpoint``, then PLANQK_ENDPOINT, then the stored one, then the default."""
    for candidate in (explicit, os.environ.get(ENDPOINT_ENV)):
        if candidate and candidate.strip():
            return normalize_endpoint(candidate)
    if stored is not None:
        return stored.endpoint
    return DEFAULT_ENDPOINT


def require_credentials(explicit_endpoint: str | None) -> Credentials:
    """The endpoint and token for a command that needs the portal; NotLoggedIn when there is none."""
    stored = load()
    endpoint = resolve_endpoint(explicit_endpoint, stored)
    if stored is None:
        raise NotLoggedIn(
            "you are not logged in",
            hint=(
                f"Create a personal access token in the portal ({endpoint}/settings/tokens/) and run "
                "`planqk login -t TOKEN`."
            ),
        )
    if stored.endpoint != endpoint:
        raise NotLoggedIn(
            f"you are logged in to {stored.endpoint}, not to {endpoint}",
            hint=f"Run `planqk login -t TOKEN --endpoint {endpoint}` to log in there (or unset {ENDPOINT_ENV}).",
        )
    return stored
