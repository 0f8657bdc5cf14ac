"""``login``, ``logout``, ``init``, ``services`` and ``jobs``."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from planqk_cli import config, term
from planqk_cli.errors import ExitCode, FileProblem, NotFound, UsageError
from planqk_cli.portal import Portal


def connect(args: argparse.Namespace) -> Portal:
    """The portal of the stored login (NotLoggedIn when there is none for the chosen endpoint)."""
    credentials = config.require_credentials(getattr(args, "endpoint", None))
    return Portal(credentials.endpoint, credentials.token)


def is_uuid(value: str) -> bool:
    """True for a UUID such as a service's or job's id."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def format_time(value: Any) -> str:
    """An API timestamp (ISO 8601, or the contract's ``YYYY-MM-DD HH:MM:SS``) in local time, to the minute."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


# --- login / logout -----------------------------------------------------------------------------


def login(args: argparse.Namespace) -> int:
    """Check the token against the portal (``GET /api/v1/me``) and store it with the endpoint."""
    token = args.token
    if token is None:
        if not term.is_tty(sys.stdin):
            raise UsageError("no token given", hint="Run `planqk login -t TOKEN` with a personal access token.")
        token = getpass.getpass("Personal access token: ")
    token = token.strip()
    if not token:
        raise UsageError("the token is empty", hint="Copy the personal access token from the portal's settings.")
    try:
        stored = config.load()
    except FileProblem:
        stored = None  # a broken config file is replaced by this login
    endpoint = config.resolve_endpoint(args.endpoint, stored)
    me = Portal(endpoint, token).me()
    path = config.save(config.Credentials(endpoint=endpoint, token=token))
    term.success(f"Logged in to {endpoint} as {me['email']}")
    term.info(term.style(f"The token is stored in {path}", "2", stream=sys.stderr))
    return ExitCode.OK


def logout(args: argparse.Namespace) -> int:
    """Forget the stored endpoint and token."""
    try:
        stored = config.load()
    except FileProblem:
        stored = None
    if config.delete():
        where = f" of {stored.endpoint}" if stored else ""
        term.success(f"Logged out{where}; the token was removed from {config.config_path()}")
    else:
        term.info("You were not logged in.")
    return ExitCode.OK


# --- init ---------------------------------------------------------------------------------------


def init(args: argparse.Namespace) -> int:
    """Write the user code template into ./NAME (never over existing files)."""
    from planqk_template import write_template

    target = Path(args.name)
    name = target.name or Path.cwd().name
    current = bool(getattr(args, "current", False))
    try:
        write_template(target, name=name, current=current)
    except FileExistsError as exc:
        raise FileProblem(str(exc), hint="Choose another NAME: `planqk init NAME`.") from exc
    except OSError as exc:
        raise FileProblem(f"cannot write the template into {target}: {exc.strerror or exc}") from exc
    kind = "the current generation's template" if current else "the user code template"
    term.success(f"Created {kind} in {target.resolve()}")
    cd = "" if target.resolve() == Path.cwd().resolve() else f"  cd {args.name}\n"
    local_run = "run it on input/input.json" if current else "run it on input/data.json and input/params.json"
    term.info(
        "Next steps:\n"
        f"{cd}"
        f"  python -m src        {local_run}\n"
        "  planqk serve         try its service API locally (Swagger UI at /docs)\n"
        "  planqk up            create the service on the portal"
    )
    return ExitCode.OK


# --- services / jobs ------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def services(args: argparse.Namespace) -> int:
    """Your services as a table (or JSON)."""
    portal = connect(args)
    items = [item for item in portal.iterate("services/") if isinstance(item, dict)]
    if args.json:
        _print_json(items)
        return ExitCode.OK
    if not items:
        term.info("You have no services yet: create one with `planqk up`.")
        return ExitCode.OK
    rows = []
    for item in items:
        latest = item.get("latest_version") or {}
        status = latest.get("status") or ""
        rows.append([
            item.get("name"),
            latest.get("version"),
            term.style(status, *term.status_color(status)),
            item.get("lifecycle"),
            item.get("quantum_backend"),
            format_time(item.get("created_at")),
            item.get("id"),
        ])  # fmt: skip
    term.table(["NAME", "VERSION", "BUILD", "LIFECYCLE", "BACKEND", "CREATED", "ID"], rows)
    return ExitCode.OK


def resolve_service_id(portal: Portal, value: str) -> str:
    """A service id from an id or the name of one of your services."""
    if is_uuid(value):
        return str(uuid.UUID(value))  # the portal takes the hyphenated form only
    found = portal.find_service(value)
    if found is None:
        raise NotFound(f"you have no service named {value!r}", hint="`planqk services` lists them.")
    return str(found["id"])


def jobs(args: argparse.Namespace) -> int:
    """Your jobs as a table (or JSON), newest first."""
    portal = connect(args)
    params: dict[str, Any] = {}
    if args.service:
        params["service"] = resolve_service_id(portal, args.service)
    if args.status:
        params["status"] = args.status
    items = [item for item in portal.iterate("jobs/", params, limit=args.limit) if isinstance(item, dict)]
    if args.json:
        _print_json(items)
        return ExitCode.OK
    if not items:
        term.info("No jobs yet: start one with `planqk run`.")
        return ExitCode.OK
    rows = []
    for item in items:
        status = item.get("status") or ""
        duration = item.get("duration_seconds")
        rows.append([
            item.get("id"),
            item.get("service_name"),
            item.get("version"),
            term.style(status, *term.status_color(status)),
            format_time(item.get("created_at")),
            f"{duration:.1f}s" if isinstance(duration, int | float) else "",
            item.get("source"),
        ])  # fmt: skip
    term.table(["ID", "SERVICE", "VERSION", "STATUS", "CREATED", "DURATION", "SOURCE"], rows)
    return ExitCode.OK
