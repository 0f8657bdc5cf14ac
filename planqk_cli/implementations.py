"""``planqk implementations`` and the ``--implementation`` road of ``planqk run``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from planqk_cli import term
from planqk_cli.commands import connect, format_time, is_uuid
from planqk_cli.errors import CliError, ExitCode, NotFound, UsageError
from planqk_cli.portal import Portal


def implementations(args: argparse.Namespace) -> int:
    """The implementations you may use (own, shared with you, public) as a table (or JSON)."""
    portal = connect(args)
    params = {"algorithm": args.algorithm} if args.algorithm else None
    items = [item for item in portal.iterate("implementations/", params) if isinstance(item, dict)]
    if args.json:
        print(json.dumps(items, indent=2))
        return ExitCode.OK
    if not items:
        term.info("No implementations you may use yet: the portal's Algorithms page lists the catalogue.")
        return ExitCode.OK
    rows = []
    for item in items:
        latest = _latest_runnable(item)
        rows.append([
            item.get("algorithm_name"),
            item.get("name"),
            item.get("sdk"),
            item.get("visibility"),
            f"v{latest['version']}" if latest else "",
            item.get("owner"),
            format_time(item.get("updated_at")),
            item.get("id"),
        ])  # fmt: skip
    term.table(["ALGORITHM", "IMPLEMENTATION", "SDK", "VISIBILITY", "FILE", "OWNER", "UPDATED", "ID"], rows)
    return ExitCode.OK


def _latest_runnable(item: dict[str, Any]) -> dict[str, Any] | None:
    files = [f for f in item.get("files") or [] if isinstance(f, dict) and f.get("is_runnable")]
    return max(files, key=lambda f: f.get("version") or 0) if files else None


def service_for_implementation(portal: Portal, implementation_id: str, *, file_version: int | None = None) -> str:
    """The id of your service made from the implementation's file (created and built when needed)."""
    from planqk_cli.up import BuildFailed, wait_for_build

    if not is_uuid(implementation_id):
        raise UsageError(
            f"{implementation_id!r} is not an implementation id", hint="`planqk implementations` lists them."
        )
    item = portal.get(f"implementations/{implementation_id}/", not_found="no implementation with this id")
    files = [f for f in item.get("files") or [] if isinstance(f, dict) and f.get("is_runnable")]
    if file_version is not None:
        files = [f for f in files if f.get("version") == file_version]
    if not files:
        which = f"version {file_version}" if file_version is not None else "a runnable file"
        raise NotFound(f"implementation {item.get('name')!r} has no {which}")
    file = max(files, key=lambda f: f.get("version") or 0)
    service = portal.post(f"implementations/{implementation_id}/files/{file['id']}/create-service")
    if not isinstance(service, dict) or not service.get("id"):
        raise CliError("the portal did not answer with a service", exit_code=ExitCode.BAD_ANSWER)
    latest = service.get("latest_version") or {}
    if latest.get("status") != "READY":
        term.info(f"Service {service.get('name')} from {item.get('name')} v{file.get('version')}: building")
        version = wait_for_build(portal, service, latest)
        if version.get("status") != "READY":
            raise BuildFailed(
                f"the build of {service.get('name')} ended {version.get('status')}: "
                f"{version.get('build_error') or 'no detail given'}"
            )
    return str(service["id"])
