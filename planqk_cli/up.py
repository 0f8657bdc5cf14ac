"""``planqk up``: create a service (or a new version of it) and follow its build."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planqk_cli import term
from planqk_cli.commands import connect
from planqk_cli.errors import BadAnswer, CliError, ExitCode, FileProblem, NotFound, UsageError
from planqk_cli.portal import Portal
from planqk_cli.project import (
    PROJECT_FILE,
    read_project,
    require_template,
    slugify,
    write_project,
    zip_template,
)

QUANTUM_BACKENDS = ("NONE", "IBM", "DWAVE")
BUILD_FINAL = frozenset({"READY", "FAILED", "CANCELLED"})
# Poll quickly at first (small builds take seconds), then back off so long builds cost little.
POLL_FIRST = 0.5
POLL_MAX = 3.0


class BuildFailed(CliError):
    exit_code = ExitCode.BUILD_FAILED


def up(args: argparse.Namespace) -> int:
    """Create or update the service of the current folder and wait for the build."""
    folder = Path.cwd()
    archive = Path(args.file) if args.file else None
    if archive is not None:
        _check_zip(archive)
    else:
        require_template(folder)
    api_spec = _api_spec(args.api_spec, folder, archive is None)
    project = read_project(folder)
    portal = connect(args)

    with tempfile.TemporaryDirectory(prefix="planqk-up-") as tmp:
        if archive is None:
            archive = Path(tmp) / "user_code.zip"
            names = zip_template(folder, archive)
            term.info(f"Packed {len(names)} files of {folder} into user_code.zip")
        if project is not None:
            service, version = _new_version(portal, project, archive, api_spec, args)
        else:
            service, version = _create_or_update(portal, folder, archive, api_spec, args)

    final = wait_for_build(portal, service, version)
    status = final.get("status")
    if status != "READY":
        code = final.get("build_error_code") or status
        message = final.get("build_error") or f"the build ended {status}"
        raise BuildFailed(
            f"the build of {service['name']} {version.get('version', '')} {status}: {message} ({code})",
            hint="The build log is above. Fix the code and run `planqk up` again to upload a new version.",
        )
    service = portal.service(service["id"])
    term.success(f"{service['name']} {final.get('version', '')} is READY")
    gateway_url = service.get("gateway_url")
    if gateway_url:
        print(gateway_url, flush=True)
    term.info("Try it with `planqk run`; publish it in the portal (My Services) to call it through an application.")
    return ExitCode.OK


def _check_zip(path: Path) -> None:
    if not path.is_file():
        raise FileProblem(f"{path} does not exist", hint="Give the zip of your user code with --file ZIP.")
    if not zipfile.is_zipfile(path):
        raise FileProblem(
            f"{path} is not a zip archive",
            hint="Create it inside the template folder: zip -r user_code.zip src requirements.txt openapi-spec.yml",
        )


def _api_spec(option: str | None, folder: Path, from_folder: bool) -> Path | None:
    if option:
        path = Path(option)
        if not path.is_file():
            raise FileProblem(f"{path} does not exist", hint="Give the service's OpenAPI file with --api-spec YML.")
        return path
    default = folder / "openapi-spec.yml"
    # The folder's spec goes along with the folder's code; with --file only when asked, since the
    # zip may come from somewhere else.
    return default if from_folder and default.is_file() else None


def _ask(args: argparse.Namespace, folder: Path) -> tuple[str, str, str]:
    """Name, description and quantum backend: from the options, else asked, else the defaults."""
    name = args.name
    description = args.description
    backend = args.quantum_backend
    default_name = slugify(folder.name)
    if not args.silent:
        if name is None:
            name = term.prompt("Name of the service", default=default_name)
        if description is None:
            description = term.prompt("Description", default="")
        if backend is None:
            backend = term.prompt("Quantum backend", default="NONE", choices=QUANTUM_BACKENDS)
    return name or default_name, description or "", backend or "NONE"


PLAN_KINDS = {"free": ("FREE", "Free"), "per-execution": ("PER_EXECUTION", "Per execution"),
              "monthly": ("MONTHLY", "Monthly")}  # fmt: skip


def parse_plan(text: str, *, rpm: int | None = None, concurrency: int | None = None) -> dict[str, Any]:
    """``free``, ``per-execution:CENTS`` or ``monthly:CENTS`` as the portal's plan terms (it checks them)."""
    kind, _, cents = text.strip().lower().partition(":")
    if kind not in PLAN_KINDS:
        raise UsageError(
            f"unknown plan {text!r}", hint="Give free, per-execution:CENTS or monthly:CENTS, e.g. per-execution:25."
        )
    api_kind, name = PLAN_KINDS[kind]
    if api_kind == "FREE":
        if cents:
            raise UsageError(f"a free plan has no price ({text!r})", hint="Write --plan free.")
        return {"name": name, "kind": api_kind, "price_cents": 0}
    if not cents.isdigit() or int(cents) < 1:
        raise UsageError(
            f"the plan {text!r} needs its price in cents", hint=f"e.g. --plan {kind}:25 for 0.25 per {kind[:9]}."
        )
    terms: dict[str, Any] = {"name": name, "kind": api_kind, "price_cents": int(cents)}
    if rpm is not None:
        terms["requests_per_minute"] = rpm
    if concurrency is not None:
        terms["max_concurrent"] = concurrency
    return terms


def _ask_int(question: str, default: str) -> int:
    while True:
        answer = term.prompt(question, default=default)
        if answer.isdigit():
            return int(answer)
        term.warn("Give a whole number.")


def _plans(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The plans of a new service: from --plan, else asked, else Free."""
    texts = list(getattr(args, "plan", None) or [])
    rpm, concurrency = getattr(args, "rpm", None), getattr(args, "concurrency", None)
    if not texts and not args.silent:
        answer = term.prompt(
            "Pricing plans (free, per-execution:CENTS, monthly:CENTS; comma-separated)", default="free"
        )
        texts = [part for part in answer.split(",") if part.strip()]
        paid = any(not part.strip().lower().startswith("free") for part in texts)
        if paid and rpm is None:
            rpm = _ask_int("Requests per minute of the paid plans", "120")
        if paid and concurrency is None:
            concurrency = _ask_int("Executions at once of the paid plans", "5")
    return [parse_plan(text, rpm=rpm, concurrency=concurrency) for text in texts or ["free"]]


def _create_or_update(
    portal: Portal, folder: Path, archive: Path, api_spec: Path | None, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    name, description, backend = _ask(args, folder)
    slug = slugify(name)
    existing = portal.find_service(slug)
    if existing is not None:
        # `up` means create *or update*: a lost planqk.json must not leave the user stuck.
        term.info(f"You already have a service named {slug}: uploading a new version of it.")
        version = portal.create_version(str(existing["id"]), archive=archive, api_spec=api_spec)
        write_project(folder, service_id=str(existing["id"]), name=slug)
        return existing, version
    fields = {"name": slug, "description": description, "quantum_backend": backend}
    fields["plans"] = json.dumps(_plans(args))
    if name != slug:
        fields["title"] = name
    term.info(f"Creating the service {slug} on {portal.endpoint}")
    service = portal.create_service(fields, archive=archive, api_spec=api_spec)
    version = service.get("latest_version")
    if not isinstance(version, dict) or "id" not in version or "id" not in service:
        raise BadAnswer("the portal created the service but did not say which version it builds")
    path = write_project(folder, service_id=str(service["id"]), name=str(service.get("name", slug)))
    term.info(term.style(f"Wrote {path.name}: the next `planqk up` here uploads a new version", "2", stream=sys.stderr))
    return service, version


def _new_version(
    portal: Portal, project: dict[str, Any], archive: Path, api_spec: Path | None, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    service_id = project["serviceId"]
    try:
        service = portal.service(service_id)
    except NotFound as exc:
        raise NotFound(
            f"{PROJECT_FILE} names service {project.get('name') or service_id}, which does not exist on "
            f"{portal.endpoint} (deleted, or another portal's)",
            hint=f"Delete {PROJECT_FILE} to create a new service with `planqk up`.",
        ) from exc
    ignored = [
        opt
        for opt, value in (
            ("-n", args.name),
            ("-d", args.description),
            ("-q", args.quantum_backend),
            ("--plan", getattr(args, "plan", None)),
            ("--rpm", getattr(args, "rpm", None)),
            ("--concurrency", getattr(args, "concurrency", None)),
        )
        if value
    ]
    if ignored:
        term.warn(f"{', '.join(ignored)} only apply to a new service; {service['name']} keeps its settings.")
    term.info(f"Uploading a new version of {service['name']} ({PROJECT_FILE})")
    version = portal.create_version(service_id, archive=archive, api_spec=api_spec)
    if "id" not in version:
        raise BadAnswer("the portal accepted the version but did not answer with its id")
    return service, version


def wait_for_build(portal: Portal, service: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    """Poll the version until its build is final, streaming new log chunks; the final version object."""
    service_id, version_id = str(service["id"]), str(version["id"])
    after = 0
    delay = POLL_FIRST
    label = f"Building {service.get('name', service_id)} {version.get('version', '')}".rstrip()
    current = version
    try:
        with term.Progress(label) as progress:
            progress.update(str(version.get("status") or "PENDING"))
            while True:
                current = portal.version(service_id, version_id)
                status = str(current.get("status") or "UNKNOWN")
                # Logs are read after the status: once the status is final, the log is complete.
                # A running status is shown before its logs, a final one after them.
                if status not in BUILD_FINAL:
                    progress.update(status)
                after = _stream_logs(portal, service_id, version_id, after, progress)
                if status in BUILD_FINAL:
                    progress.update(status)
                    return current
                time.sleep(delay)
                delay = min(delay * 1.5, POLL_MAX)
    except KeyboardInterrupt:
        term.info("\nStopped waiting. The build goes on in the portal: `planqk services` shows its status.")
        raise


def _stream_logs(portal: Portal, service_id: str, version_id: str, after: int, progress: term.Progress) -> int:
    return stream_logs(lambda n: portal.build_logs(service_id, version_id, n), after, progress)


def stream_logs(fetch: Callable[[int], dict[str, Any]], after: int, progress: term.Progress) -> int:
    """Print the chunks newer than ``after`` (``{"chunks": [{"seq", "text"}], "last"}``); the new ``after``."""
    while True:
        answer = fetch(after)
        previous = after
        for chunk in answer.get("chunks") or []:
            if isinstance(chunk, dict) and isinstance(chunk.get("seq"), int) and chunk["seq"] > after:
                progress.log(str(chunk.get("text", "")))
                after = chunk["seq"]
        last = answer.get("last")
        if isinstance(last, int):
            after = max(after, last)
        # A poll may answer a bounded number of chunks: ask again while there is progress.
        if after == previous:
            return after
