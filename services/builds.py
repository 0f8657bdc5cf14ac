"""The build pipeline: claim a PENDING version, unpack its archive, build it on a runtime, finish it.

The counterpart of :mod:`jobs.engine` for services. A version's build is a state machine
(PENDING → BUILDING → READY | FAILED | CANCELLED) kept in the database. The Celery task claims a
PENDING version with a conditional update, so a redelivered or duplicated task never builds
twice; every later transition is conditional on the state it expects, so a cancel, the reaper
and the build itself can race without corrupting it. The writes that start or stop a build
(create, cancel, retry) are in :mod:`services.services`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from planqk_portal.errors import ApplicationError
from planqk_portal.logs import ChunkedLogWriter

from . import services, uploads
from .models import BuildLogChunk, BuildStatus, ServiceVersion

logger = logging.getLogger(__name__)

#: How long after PLANQK_BUILD_TIMEOUT the reaper waits before it calls a build lost: the task's own
#: soft time limit fires first and fails the build with a better message.
REAPER_GRACE_SECONDS = 120


class _BuildWatch:
    """``should_cancel`` for the runtime; also flushes the log while a step is silent."""

    def __init__(self, version_id: uuid.UUID, writer: ChunkedLogWriter) -> None:
        self.version_id = version_id
        self.writer = writer
        self.checked = 0.0
        self.flushed = time.monotonic()
        self.cancelled = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.flushed >= 1.0:
            self.writer.flush()
            self.flushed = now
        if not self.cancelled and now - self.checked >= 1.0:
            self.checked = now
            row = ServiceVersion.objects.filter(pk=self.version_id).values_list("status", "cancel_requested").first()
            # Gone (service deleted), cancelled or taken over by the reaper: stop building.
            self.cancelled = row is None or row[1] or row[0] != BuildStatus.BUILDING
        return self.cancelled


def _finish(version_id: uuid.UUID, status: str, *, unless_cancelled: bool = False, **fields: Any) -> bool:
    """BUILDING → ``status``; False when something else (a cancel, the reaper) got there first."""
    rows = ServiceVersion.objects.filter(pk=version_id, status=BuildStatus.BUILDING)
    if unless_cancelled:
        rows = rows.filter(cancel_requested=False)
    return rows.update(status=status, build_ended_at=timezone.now(), **fields) == 1


class _BuildLog(ChunkedLogWriter):
    """The build's log; quiet once its version is gone (the service was deleted mid-build)."""

    def flush(self) -> None:
        try:
            super().flush()
        except IntegrityError:
            self.truncated = True


def service_version_build(*, version_id: str | uuid.UUID) -> ServiceVersion | None:
    """Build one version on the configured runtime (the body of the Celery task).

    Returns None when there was nothing to do: another worker claimed it, it was cancelled
    before it started, or it no longer exists.
    """
    from hosts.selectors import host_name
    from jobs.runtime_factory import get_runtime
    from runtimes import BuildError, BuildSpec

    try:
        version_id = uuid.UUID(str(version_id))
    except ValueError:
        logger.warning("build of a malformed version id %r ignored", version_id)
        return None
    runtime_name = settings.PLANQK_RUNTIME or "local"
    claimed = ServiceVersion.objects.filter(pk=version_id, status=BuildStatus.PENDING, cancel_requested=False).update(
        status=BuildStatus.BUILDING,
        build_started_at=timezone.now(),
        build_ended_at=None,
        build_error="",
        build_error_code="",
        runtime=runtime_name,
    )
    if not claimed:
        return None
    version = ServiceVersion.objects.select_related("service").get(pk=version_id)
    writer = _BuildLog(BuildLogChunk, "version", version, max_bytes=settings.PLANQK_BUILD_LOG_MAX_BYTES)
    watch = _BuildWatch(version_id, writer)
    workdir = _workdir()

    def end(status: str, line: str, **fields: Any) -> bool:
        # The log is complete before the state is final: a poller that sees the end has every line.
        writer.line(line)
        writer.flush()
        return _finish(version_id, status, **fields)

    def cancelled(line: str) -> None:
        end(BuildStatus.CANCELLED, line, build_error="Cancelled by the provider.", build_error_code="build:cancelled")

    try:
        writer.line(
            f"Building {version.service.name} {version.version} on the {runtime_name} runtime on host {host_name()}"
        )
        source = workdir / "code"
        source.mkdir()
        _unpack(version, workdir, source, writer)
        _detect_generation(version, source, writer)
        runtime = get_runtime(runtime_name)
        spec = BuildSpec(version_id=str(version.id), source_dir=source, requirements=version.requirements)
        result = runtime.build(spec, log=writer.line, should_cancel=watch)
        try:
            _smoke_test(runtime, version, result.build, writer, watch)
        except BaseException:
            _discard_build(runtime, result.handle)
            raise
        writer.line(f"Version {version.version} is READY.")
        writer.flush()
        if not _finish_ready(version, result.handle):
            _discard_build(runtime, result.handle)
            cancelled("The build was cancelled as it finished: its result is discarded.")
    except BuildError as exc:
        if exc.code == "build:cancelled" or watch.cancelled:
            cancelled("Build cancelled.")
        else:
            end(BuildStatus.FAILED, f"ERROR: {exc.message}", build_error=exc.message, build_error_code=exc.code)
    except ApplicationError as exc:
        end(BuildStatus.FAILED, f"ERROR: {exc.message}", build_error=exc.message, build_error_code=exc.code)
    except BaseException as exc:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, SoftTimeLimitExceeded):
            message = f"The build took longer than {settings.PLANQK_BUILD_TIMEOUT} seconds and was stopped."
            code = "build:user:time-out"
        else:
            logger.exception("build of version %s failed on the platform's side", version_id)
            message = (
                f"The platform failed to build this version ({type(exc).__name__}: {exc}). Retry the build; "
                "if it fails again, tell the operator."
            )
            code = "build:platform:error"
        end(BuildStatus.FAILED, f"ERROR: {message}", build_error=message, build_error_code=code)
        if not isinstance(exc, Exception):
            raise
    finally:
        try:
            writer.flush()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return ServiceVersion.objects.filter(pk=version_id).first()


def _builds_tmp() -> Path:
    base = Path(settings.PLANQK_DATA_DIR) / "tmp" / "builds"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="build-", dir=_builds_tmp()))


def service_version_unpack(*, version: ServiceVersion, dest: Path, workdir: Path | None = None) -> Any:
    """Unpack the version's stored archive into the empty folder ``dest``, with every upload check again.

    What a build unpacks, and what a host materialising another host's build unpacks
    (``ExecutionSpec.unpack_code``): the same code both times. Returns the archive's summary.
    """
    if not version.archive:
        raise ApplicationError("The uploaded archive of this version is missing.", code="build:no-archive")
    with tempfile.TemporaryDirectory(dir=workdir or _builds_tmp()) as tmp:
        local = Path(tmp) / "user_code.zip"
        try:
            with version.archive.open("rb") as stored, open(local, "wb") as out:
                shutil.copyfileobj(stored, out)
        except OSError as exc:
            raise ApplicationError(
                f"The uploaded archive of this version cannot be read ({exc}).", code="build:no-archive"
            ) from exc
        with open(local, "rb") as fh:
            return uploads.extract_archive(fh, dest)


def _unpack(version: ServiceVersion, workdir: Path, source: Path, writer: ChunkedLogWriter) -> None:
    """Copy the stored archive next to ``source`` and unpack it there with every check again."""
    summary = service_version_unpack(version=version, dest=source, workdir=workdir)
    writer.line(f"Unpacked {len(summary.files)} files ({summary.total_bytes} bytes)")
    if summary.requirements_source and summary.requirements_source != uploads.REQUIREMENTS_PATH:
        writer.line(f"No requirements.txt: installing the pip dependencies of {summary.requirements_source}")
    if summary.ignored_conda_packages:
        writer.line(
            "Conda packages are not installed (list them in requirements.txt if pip can install them): "
            + ", ".join(summary.ignored_conda_packages)
        )


def _detect_generation(version: ServiceVersion, source: Path, writer: ChunkedLogWriter) -> None:
    """Which contract the code follows (:mod:`planqk_runtime.generation`), saved on the version."""
    from planqk_runtime.generation import GenerationError, detect

    try:
        found = detect(source)
    except GenerationError as exc:
        raise ApplicationError(str(exc), code="build:user:bad-generation") from None
    writer.line(f"Service generation: {found.generation} ({found.reason})")
    fields: dict[str, Any] = {"generation": found.generation}
    from .models import Generation

    if (
        found.generation == Generation.CURRENT
        and version.api_spec.strip() == uploads.default_api_spec(title=version.service.display_name).strip()
    ):
        # The upload had no spec and got the 2022 template's: its data/params schemas and example
        # would describe another program. Such a version takes any object until it ships its own.
        fields["api_spec"] = _generic_current_spec(version)
        writer.line(
            "No openapi-spec.yml: the input is any JSON object (add one with the request body schema to have "
            "requests checked and an example run)"
        )
    ServiceVersion.objects.filter(pk=version.pk).update(**fields)
    for name, value in fields.items():
        setattr(version, name, value)


def _generic_current_spec(version: ServiceVersion) -> str:
    """A current-generation spec that says only what is known: ``POST /`` takes a JSON object."""
    import yaml

    spec = {
        "openapi": "3.0.3",
        "info": {"title": version.service.display_name, "version": version.version},
        "paths": {
            "/": {
                "post": {
                    "summary": "Start an execution",
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {"201": {"description": "The execution was created"}},
                }
            }
        },
    }
    return yaml.safe_dump(spec, sort_keys=False)


#: The runner's entry point that imports ``src.program`` and finds ``run`` without calling it.
SMOKE_IMPORT_ENTRY_POINT = "planqk_runtime.smoke:check"


def _smoke_test(
    runtime: Any, version: ServiceVersion, build: Any, writer: ChunkedLogWriter, watch: _BuildWatch
) -> None:
    """Run the built version before it is READY: its code imports and has ``run``; its example input runs.

    Each run is an ordinary execution in the runtime's sandbox (no network, the service's memory
    and CPU limits, ``PLANQK_BUILD_SMOKE_TIMEOUT``). The example is the ``POST /`` request
    example of the version's API spec; the provider can skip it (services that need hardware
    tokens).
    """
    from jobs.selectors import service_version_example, service_version_request_example

    if runtime.name == "external":
        return
    service = version.service
    started = time.monotonic()
    writer.line("==> smoke test")
    _smoke_run(runtime, version, build, writer, watch, kind="import", env={"ENTRY_POINT": SMOKE_IMPORT_ENTRY_POINT})
    writer.line("src.program imports and defines run")
    data, params = service_version_example(version=version)
    _, secrets = service_version_request_example(version=version)
    if data is None and params is None:
        writer.line("the API spec has no example input: run() is not called")
    elif service.skip_example_run:
        writer.line("the example run is skipped (the provider's choice for this service)")
    else:
        _smoke_run(runtime, version, build, writer, watch, kind="example", data=data, params=params, secrets=secrets)
        writer.line("the API spec's example input runs")
    writer.line(f"<== smoke test done in {time.monotonic() - started:.1f}s")


def _smoke_run(
    runtime: Any,
    version: ServiceVersion,
    build: Any,
    writer: ChunkedLogWriter,
    watch: _BuildWatch,
    *,
    kind: str,
    env: dict[str, str] | None = None,
    data: Any = None,
    params: Any = None,
    secrets: dict[str, str] | None = None,
) -> None:
    from jobs.selectors import is_current_generation
    from planqk_runtime.protocol import KIND_RESULT, final_response
    from planqk_runtime.runner import CURRENT, GENERATION_ENV
    from planqk_runtime.secrets import Redactor, environment
    from runtimes import BuildError, ExecutionSpec

    service = version.service
    timeout = int(settings.PLANQK_BUILD_SMOKE_TIMEOUT)
    env = dict(env or {})
    if is_current_generation(version) and kind != "import":
        env[GENERATION_ENV] = CURRENT
        env.update(environment(secrets or {}))
    # The example's secrets (if its spec gives any) are redacted from the build log like a job's.
    redact = Redactor((secrets or {}).values())
    spec = ExecutionSpec(
        execution_id=f"smoke-{version.id.hex}-{kind}",
        build=build,
        data=data if isinstance(data, dict) else None,
        params=params if isinstance(params, dict) else None,
        env=env,
        memory_mb=int(service.memory_mb),
        cpus=float(service.cpus),
        timeout_seconds=timeout,
        max_output_bytes=256 * 1024,
    )
    handle = runtime.start(spec)
    output, offset = "", 0
    try:
        while True:
            state = runtime.poll(handle)
            text, offset = runtime.read_output(handle, offset)
            output += text
            if not state.running:
                break
            if watch():
                runtime.cancel(handle)
                raise BuildError("build cancelled", user_error=False, code="build:cancelled")
            time.sleep(0.1)
        text, offset = runtime.read_output(handle, offset)
        output += text
        channel = getattr(runtime, "final_response", None)
        final = channel(handle) if callable(channel) else final_response(output)
    finally:
        try:
            runtime.cleanup(handle)
        except Exception:  # the build's outcome does not depend on removing a finished execution
            logger.warning("could not remove the smoke execution %s", spec.execution_id, exc_info=True)
    lines = [line for line in output.splitlines() if line.strip()]
    for line in lines[-40:]:
        writer.line(redact(f"  | {line}"))
    if final is not None and final.kind == KIND_RESULT and state.exit_code == 0:
        return
    if state.timed_out:
        why = f"did not finish within {timeout} seconds"
    elif final is not None:
        why = redact(f"failed: {final.payload.get('code')}: {final.payload.get('detail')}")
    else:
        why = f"ended without an answer (exit code {state.exit_code})"
    if kind == "import":
        message = f"Smoke test: src.program cannot be imported or has no run() ({why})."
        code = "build:user:smoke-import"
    else:
        message = (
            f"Smoke test: the API spec's example input {why}. Fix the code or the example, or mark the example "
            "run as skipped for services that need hardware tokens."
        )
        code = "build:user:smoke-example"
    raise BuildError(message, user_error=True, code=code)


def _finish_ready(version: ServiceVersion, handle: dict[str, Any]) -> bool:
    with transaction.atomic():
        if not _finish(version.pk, BuildStatus.READY, unless_cancelled=True, build_handle=handle):
            return False
        version.refresh_from_db()
        services.service_version_promote(version=version)
    return True


def _discard_build(runtime: Any, handle: dict[str, Any]) -> None:
    try:
        runtime.remove_build(handle)
    except Exception:  # cleanup is best effort; the build's result is unused either way
        logger.warning("could not remove the discarded build %s", handle, exc_info=True)


def service_builds_remove(*, builds: list[dict[str, Any]]) -> int:
    """Remove the runtime artefacts (environments' code copies, images) of deleted versions."""
    from jobs.runtime_factory import get_runtime

    removed = 0
    for build in builds:
        handle = build.get("handle")
        if not isinstance(handle, dict):
            continue
        try:
            get_runtime(build.get("runtime") or None).remove_build(handle)
            removed += 1
        except Exception:  # one broken handle must not keep the others
            logger.warning("could not remove build %s", handle, exc_info=True)
    return removed


def service_builds_reap() -> int:
    """Fail builds stuck in BUILDING past ``PLANQK_BUILD_TIMEOUT``: their worker died."""
    timeout = int(settings.PLANQK_BUILD_TIMEOUT)
    cutoff = timezone.now() - timedelta(seconds=timeout + REAPER_GRACE_SECONDS)
    stuck = ServiceVersion.objects.filter(status=BuildStatus.BUILDING).filter(
        Q(build_started_at__lt=cutoff) | Q(build_started_at__isnull=True)
    )
    message = (
        f"The build did not finish within {timeout} seconds: the worker building it stopped (it crashed or was "
        "restarted). Retry the build."
    )
    reaped = 0
    for version in stuck:
        if _finish(version.pk, BuildStatus.FAILED, build_error=message, build_error_code="build:platform:lost"):
            writer = ChunkedLogWriter(
                BuildLogChunk, "version", version, max_bytes=settings.PLANQK_BUILD_LOG_MAX_BYTES + 1024
            )
            writer.line(f"ERROR: {message}")
            writer.flush()
            reaped += 1
    return reaped


def service_builds_requeue() -> int:
    """Enqueue again builds left PENDING for long (their message was lost, e.g. the broker was down).

    A duplicate is harmless (the build is claimed once); each version is enqueued again at most
    once per ``PLANQK_BUILD_REQUEUE_SECONDS`` so a long queue is not flooded with copies.
    """
    from django.core.cache import cache

    from hosts.routing import queue_for_build

    from .tasks import build_service_version

    every = settings.PLANQK_BUILD_REQUEUE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=every)
    waiting = ServiceVersion.objects.filter(
        status=BuildStatus.PENDING, cancel_requested=False, created_at__lt=cutoff
    ).select_related("service")[:500]
    requeued = 0
    for version in waiting:
        if cache.add(f"services:requeue:{version.pk}", 1, timeout=every):
            build_service_version.apply_async(args=[str(version.pk)], queue=queue_for_build(version))
            requeued += 1
    return requeued
