"""``planqk run``: start a job on the portal and print its result."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from planqk_cli import term
from planqk_cli.commands import connect, is_uuid
from planqk_cli.errors import CliError, ExitCode, UsageError
from planqk_cli.portal import Portal
from planqk_cli.project import PROJECT_FILE, parse_json_argument, read_json_file, read_project
from planqk_cli.up import stream_logs

JOB_FINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"})
POLL_FIRST = 0.5
POLL_MAX = 5.0


class JobFailed(CliError):
    exit_code = ExitCode.JOB_FAILED


def _input(value: str | None, file: str | None, option: str, default: Path) -> tuple[bool, Any]:
    """(given, value) for data or params: the option, the file, else the template's input file."""
    if value is not None:
        return True, parse_json_argument(value, option)
    if file is not None:
        return True, read_json_file(Path(file))
    if default.is_file():
        return True, read_json_file(default)
    return False, None


def run(args: argparse.Namespace) -> int:
    """Start a job, wait for it with backoff and print its result JSON."""
    folder = Path.cwd()
    body: dict[str, Any] = {}
    service = args.service
    implementation = getattr(args, "implementation", None)
    if implementation is not None:
        if service is not None:
            raise UsageError("give SERVICE or --implementation, not both")
        from planqk_cli.implementations import service_for_implementation

        service = service_for_implementation(
            connect(args), implementation, file_version=getattr(args, "file_version", None)
        )
    if service is None:
        project = read_project(folder)
        if project is None:
            raise UsageError(
                "which service? Give SERVICE (a name or id)",
                hint=f"Or run it in the folder of `planqk up`, whose {PROJECT_FILE} names the service.",
            )
        service = project["serviceId"]
    body["service_id" if is_uuid(service) else "service_name"] = service
    for key, value, file, option in (
        ("data", args.data, args.data_file, "-d/--data"),
        ("params", args.params, args.params_file, "-p/--params"),
    ):
        default = folder / "input" / f"{key}.json"
        if key == "data" and not default.is_file():
            # The current generation's template: its request object is the job's whole input.
            default = folder / "input" / "input.json"
        given, payload = _input(value, file, option, default)
        if given:
            body[key] = payload

    portal = connect(args)
    job = portal.submit_job(body)
    job_id = str(job.get("id", ""))
    if not job_id:
        raise CliError("the portal accepted the job but did not answer with its id", exit_code=ExitCode.BAD_ANSWER)
    if args.detached:
        print(job_id, flush=True)
        return ExitCode.OK

    job = _wait(portal, job)
    status = job.get("status")
    if status == "SUCCEEDED":
        print(json.dumps(job.get("result"), indent=2), flush=True)
        return ExitCode.OK
    error = job.get("error") or {}
    code = error.get("code") if isinstance(error, dict) else None
    detail = error.get("detail") if isinstance(error, dict) else None
    raise JobFailed(
        f"job {job_id} {status}: {code or status}: {detail or 'no detail given'}",
        hint="Its log is above.",
    )


def _wait(portal: Portal, job: dict[str, Any]) -> dict[str, Any]:
    job_id = str(job["id"])
    delay = POLL_FIRST
    after = 0
    try:
        with term.Progress(f"Job {job_id}") as progress:
            progress.update(str(job.get("status") or "PENDING"))
            while True:
                job = portal.job(job_id)
                status = str(job.get("status") or "UNKNOWN")
                # Logs are read after the status: once the status is final, the log is complete.
                # A running status is shown before its logs, a final one after them.
                if status not in JOB_FINAL:
                    progress.update(status)
                after = stream_logs(lambda n: portal.job_logs(job_id, n), after, progress)
                if status in JOB_FINAL:
                    progress.update(status)
                    return job
                time.sleep(delay)
                delay = min(delay * 1.5, POLL_MAX)
    except KeyboardInterrupt:
        print(f"\nStopped waiting. The job goes on: {job_id} (`planqk jobs` shows it).", file=sys.stderr)
        raise
