"""The execution engine: runs one job on its service version's runtime and always finishes it.

A worker claims a PENDING job with a conditional update (a redelivered task finds nothing to
claim), starts the execution on the runtime that built the version, and follows it: output is
read incrementally, stored as log chunks and interim results in one transaction together with
the read offset and the heartbeat, and the outcome is taken from the runtime's result channel
only (``Runtime.final_response``), never from the output: user code and its children can print
anything, also after the runner finished.

Every write of a running job is conditional on ``worker`` still being this execution's id, so
a worker that was presumed dead and handed over by the reaper can never write over the one that
took over. The reaper (:func:`job_reap`) hands stale RUNNING jobs to a new worker, which reads
on from the saved offset with the saved runtime handle.

Error codes: ``platform:*`` when our side failed (the user can retry), ``job:*`` for limits the
platform enforced on their code (timeout, memory, output), the runner's or the service's own
codes (``EXECUTION_ERROR``, ``SAMPLE_FAILURE``...) and ``datapool:*`` for unreadable references.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from planqk_portal.errors import ApplicationError
from planqk_portal.logs import ChunkedLogWriter
from planqk_runtime.protocol import KIND_INTERIM, parse_output_line
from planqk_runtime.secrets import Redactor
from planqk_service_api import json_problem

from .models import JOB_FINAL_STATES, InterimResult, Job, JobLogChunk, JobResultFile, JobStatus

logger = logging.getLogger(__name__)

# Logs and interim results reach the database at most this often (one transaction each).
CHECKPOINT_SECONDS = 0.5
CANCEL_CHECK_SECONDS = 0.25
# Output is read this often from a runtime that cannot wake the engine for it (Runtime.wait's
# clock default); one that can (Runtime.waits_for_output) is read on every wake.
READ_EVERY_SECONDS = 0.2
# Beyond the runtime's own timeout enforcement, the engine stops an execution this much later.
TIMEOUT_GRACE_SECONDS = 30
MAX_HANDOVERS = 5
# Results and interim results deeper than this cannot be stored safely (json recursion).
RESULT_MAX_DEPTH = 500
PLATFORM_PREFIX = "[platform] "


def log_max_bytes() -> int:
    return int(settings.PLANQK_JOB_LOG_MAX_BYTES)


def output_max_bytes() -> int:
    """What the runtime keeps of an execution's output: the log cap plus room for the result line."""
    return int(settings.PLANQK_JOB_OUTPUT_MAX_BYTES)


def heartbeat_stale_seconds() -> int:
    return int(settings.PLANQK_JOB_HEARTBEAT_STALE_SECONDS)


def heartbeat_every_seconds() -> float:
    return min(5.0, heartbeat_stale_seconds() / 6)


def pending_requeue_seconds() -> int:
    return int(settings.PLANQK_JOB_PENDING_REQUEUE_SECONDS)


def pending_expire_seconds() -> int:
    return int(settings.PLANQK_JOB_PENDING_EXPIRE_SECONDS)


def max_interim_results() -> int:
    return int(settings.PLANQK_JOB_MAX_INTERIM_RESULTS)


def execution_id(job: Job) -> str:
    """The runtime's name for a job's execution; the ``job-`` prefix tells the reaper it is ours.

    A run after the first (the job started again because its host was lost) has a name of its
    own, ``job-<id>-run<n>``: what the lost host left under the first name (a folder, a uid
    claim, a cgroup, a container) is removed by that name when it comes back, never the new
    execution's on a machine the two share.
    """
    if job.runtime_starts:
        return f"job-{job.id}-run{job.runtime_starts + 1}"
    return f"job-{job.id}"


_EXECUTION_JOB_ID = re.compile(r"job-([0-9a-f-]{36})(?:-run[0-9]+)?")


class _LostOwnership(Exception):
    """Another worker owns this job now (the reaper handed it over): stop following quietly."""


@dataclass
class Outcome:
    status: str
    result: Any = None
    metadata: Any = None
    code: str = ""
    detail: str = ""


@dataclass
class _Follow:
    """Per-execution reading state (kept off the engine object, as Read the Docs does)."""

    offset: int
    partial: str = ""
    # Lines read but not yet routed (kept for saved_offset; the outcome is never among them).
    held: list[str] = field(default_factory=list)
    pending_interims: list[Any] = field(default_factory=list)
    new_output: bool = False

    def saved_offset(self) -> int:
        """Bytes fully processed: what is held back is read again after a handover."""
        unread = self.partial + "".join(self.held)
        return self.offset - len(unread.encode())


# One runtime object per name and process: a fresh one probes its host again (the interpreter,
# cgroups, the Docker connection), which costs tens of milliseconds per job.
_runtimes: dict[str, Any] = {}


def runtime_for(name: str | None) -> Any:
    """The runtime called ``name`` (None: ``PLANQK_RUNTIME``), created once per process."""
    from jobs.runtime_factory import get_runtime

    key = name or settings.PLANQK_RUNTIME
    if key not in _runtimes:
        _runtimes[key] = get_runtime(key)
    return _runtimes[key]


def _worker_id() -> str:
    # The host part is PLANQK_HOST_NAME (no colon): the reaper reads a job's host from it.
    return f"{settings.PLANQK_HOST_NAME}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def worker_host(worker: str) -> str:
    """The host of a worker id (``<host>:<pid>:<random>``); empty for a job nobody follows."""
    return worker.split(":", 1)[0] if worker.count(":") >= 2 else ""


# --- entry point -------------------------------------------------------------------------------


def execute_job(job_id: str) -> str:
    """Run the job if this call may claim it; returns what happened (for the task's log)."""
    worker = _worker_id()
    if not Job.objects.claim(job_id, worker=worker):
        return "not claimed"
    job = Job.objects.select_related("service", "service_version", "owner", "result_pool").get(pk=job_id)
    return Execution(job, worker).run()


class Execution:
    """Follows one claimed job to its final state."""

    def __init__(self, job: Job, worker: str) -> None:
        self.job = job
        self.worker = worker
        self.runtime: Any = None
        # The runtime's typed handle; rebuilt from ``job.runtime_handle`` (its JSON) on takeover.
        self.handle: Any = None
        self.writer = ChunkedLogWriter(
            JobLogChunk,
            "job",
            job,
            max_bytes=log_max_bytes(),
            flush_bytes=1 << 62,  # flushed by _checkpoint only, inside its transaction
            flush_seconds=float("inf"),
        )
        self.interim_seq = InterimResult.objects.filter(job=job).aggregate(m=Max("seq"))["m"] or 0
        self.interims_dropped = False
        self.taken_over = job.runtime_handle is not None
        self.follow = _Follow(offset=job.output_offset)
        self.finished = False
        self.peak_memory_kb: int | None = None
        # Current generation: the request's secrets, for the program's environment at start and
        # for redacting their values from every stored log line (also after a takeover).
        from .admission import SecretsUnreadable, open_secrets

        try:
            self.secrets: dict[str, str] | None = open_secrets(job.secrets_ciphertext)
        except SecretsUnreadable:
            # Never run the program without the secrets it was given, nor log it unredacted.
            self.secrets = None
        self.redact = Redactor((self.secrets or {}).values())
        self.result_files: list[Any] = []

    @property
    def host(self) -> str:
        """The host this execution is followed on (what the job's log names)."""
        return worker_host(self.worker) or settings.PLANQK_HOST_NAME

    def owned(self) -> Any:
        return Job.objects.filter(pk=self.job.pk, status=JobStatus.RUNNING, worker=self.worker)

    def platform_line(self, text: str) -> None:
        line = PLATFORM_PREFIX + text
        self.log(line if line.endswith("\n") else line + "\n")

    def log(self, text: str) -> None:
        """The one way into the job's stored log: secrets redacted, NUL shown as U+FFFD (the
        database cannot store NUL characters in text)."""
        self.writer.write(self.redact(text).replace("\x00", "\ufffd"))

    # --- the whole run -----------------------------------------------------------------------

    def run(self) -> str:
        outcome: Outcome | None = None
        lost = False
        try:
            if self.taken_over:
                self.runtime = self._runtime(self.job.runtime or None)
                self.handle = self.runtime.execution_handle(self.job.runtime_handle)
                if self.secrets is None:
                    self.runtime.cancel(self.handle)
                    raise _PlatformFailure("platform:secrets-unreadable", "the job's secrets cannot be decrypted")
                self.platform_line(f"a new worker took over this job on host {self.host}; reading on")
            else:
                self.handle = self._start()
            if self.handle is not None:
                outcome = self._follow()
        except _LostOwnership:
            lost = True
        except _PlatformFailure as exc:
            outcome = platform_outcome(self.job, exc.code, exc.message)
        except ApplicationError as exc:
            # Input that cannot be read (a deleted data pool file...): the caller's to fix.
            outcome = Outcome(JobStatus.FAILED, code=exc.code, detail=exc.message)
        except Exception as exc:  # a platform failure must still end the job
            logger.exception("job %s failed in the engine", self.job.pk)
            outcome = platform_outcome(self.job, "platform:error", f"{type(exc).__name__}: {exc}")
        finally:
            # Also reached through BaseExceptions (worker shutdown...): leave a final state behind.
            if not lost and not self.finished:
                if outcome is None:
                    outcome = Outcome(
                        JobStatus.FAILED, code="platform:error", detail="The worker stopped while running this job."
                    )
                try:
                    self._finish(outcome)
                except _LostOwnership:
                    lost = True
                except Exception:
                    logger.exception("job %s: recording the final state failed", self.job.pk)
                    _force_final(self.job.pk, self.worker)
            if lost and self._still_the_jobs_execution():
                # The execution belongs to the worker that took over: leave it alone.
                logger.warning("job %s: another worker owns it now; leaving it", self.job.pk)
            else:
                # Finished, or the job was deleted meanwhile (its service went): stop and remove it.
                self._cleanup()
        return "handed over" if lost else str(self.job.status)

    def _still_the_jobs_execution(self) -> bool:
        """After losing the job: is our execution still the one the job follows? Not when the job
        was deleted, final (whoever ended it, our execution has no job to serve), or settled
        without us (its host was counted lost: run again elsewhere); then this worker, e.g. of a
        host that came back, stops and removes its own execution."""
        found = list(Job.objects.filter(pk=self.job.pk).values_list("runtime_handle", "status")[:1])
        if not found:
            return False  # deleted meanwhile (its service went)
        if self.handle is None or self.runtime is None:
            return True  # nothing of ours runs
        stored, status = found[0]
        # Compared as stored (JSON), so a tuple in the handle does not look like another handle.
        if status not in JOB_FINAL_STATES and stored == json.loads(json.dumps(self.handle.to_json())):
            return True
        logger.warning("job %s: settled without this worker (host lost); stopping its execution here", self.job.pk)
        try:
            self.runtime.cancel(self.handle)
        except Exception:  # cleanup below kills what is left
            logger.warning("job %s: cancelling the execution failed", self.job.pk, exc_info=True)
        return False

    # --- start ---------------------------------------------------------------------------------

    def _runtime(self, name: str | None) -> Any:
        from runtimes import RuntimeUnavailable

        try:
            return runtime_for(name)
        except RuntimeUnavailable as exc:
            raise _PlatformFailure(
                "platform:runtime-unavailable", f"The runtime {name!r} is not available: {exc}"
            ) from exc

    def _beat_while_starting(self) -> bool:
        """The runtime's ``should_stop`` during a start (materialising a build may take minutes):
        the job beats, so the reaper does not take its worker for dead; True once it is not ours."""
        now = time.monotonic()
        if now - getattr(self, "_start_beat", 0.0) < heartbeat_every_seconds():
            return False
        self._start_beat = now
        return not self.owned().update(heartbeat_at=timezone.now())

    def _start(self) -> dict[str, Any] | None:
        from runtimes import ExecutionSpec, RuntimeUnavailable
        from services.builds import service_version_unpack

        job = self.job
        if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
            self._finish(Outcome(JobStatus.CANCELLED, code="job:cancelled", detail="Cancelled before it started."))
            return None
        if self.secrets is None:
            raise _PlatformFailure(
                "platform:secrets-unreadable", "the job's secrets cannot be decrypted with the install's keys"
            )
        version = job.service_version
        if not version.build_handle:
            raise _PlatformFailure(
                "platform:not-built", f"Version {version.version} has no build to run; build it again."
            )
        self.runtime = self._runtime(version.runtime or None)
        build = self.runtime.build_handle(version.build_handle)
        if getattr(build, "version_id", "") and build.version_id != str(version.pk):
            # A handle copied from another version (or edited) would run that version's code here.
            raise _PlatformFailure(
                "platform:build-unavailable", f"the build handle of version {version.pk} names another version"
            )
        data = self._input(job.data, job.data_ref, "data")
        params = self._input(job.params, job.params_ref, "params")
        service = job.service
        spec = ExecutionSpec(
            execution_id=execution_id(job),
            build=build,
            data=data,
            params=params,
            env=execution_environment(job, self.secrets or {}),
            output_limits=output_limits(),
            memory_mb=min(int(service.memory_mb), int(settings.PLANQK_JOB_MAX_MEMORY_MB)),
            cpus=min(float(service.cpus), float(settings.PLANQK_JOB_MAX_CPUS)),
            timeout_seconds=int(job.timeout_seconds),
            max_pids=int(settings.PLANQK_JOB_MAX_PIDS),
            max_output_bytes=output_max_bytes(),
            # A host without the build's folders materialises them (issue 22): its job log says so,
            # the code comes from the version's stored archive, and the job beats meanwhile.
            log=lambda text: self.platform_line(f"host {self.host}: {text}"),
            unpack_code=lambda dest: service_version_unpack(version=version, dest=dest),
            should_stop=self._beat_while_starting,
        )
        try:
            handle = self.runtime.start(spec)
        except RuntimeUnavailable as exc:
            raise _PlatformFailure(exc.code, str(exc)) from exc
        if not Job.objects.record_start(job.pk, worker=self.worker, runtime=self.runtime.name, handle=handle.to_json()):
            # Cannot happen unless the reaper took a job that was alive: do not leave it running.
            self.runtime.cancel(handle)
            self.runtime.cleanup(handle)
            raise _LostOwnership
        # A warm runner had started and imported the code before this job (runtimes.local.warm).
        warm = " (warm runner)" if getattr(handle, "warm", False) else ""
        self.platform_line(f"started on host {self.host}{warm}")
        # Without a sandbox (the operator's choice) every job log says what isolation is missing.
        notice = getattr(self.runtime, "isolation_notice", None)
        if notice is not None and (text := notice()):
            self.platform_line(text)
        return handle

    def _input(self, value: Any, ref: Any, name: str) -> Any:
        if ref is None:
            return value
        from datapools.selectors import datafile_read_json

        from .services import dataref_max_bytes, input_check

        limit = dataref_max_bytes()
        loaded = datafile_read_json(user=self.job.owner, ref=ref, max_bytes=limit)
        self.platform_line(f"{name} read from data pool file {ref.get('fileId')}")
        checked = input_check(loaded, name=f"The {name} file", max_bytes=limit)
        from .admission import schema_check

        schema_check(service_version=self.job.service_version, **{name: checked})
        return checked

    # --- follow --------------------------------------------------------------------------------

    def _follow(self) -> Outcome:
        runtime, handle, job = self.runtime, self.handle, self.job
        started = job.started_at or timezone.now()
        hard_deadline = started + timedelta(seconds=job.timeout_seconds + TIMEOUT_GRACE_SECONDS)
        # PLANQK_ENGINE_WAIT=poll: the clock alone, as before events (for comparing the two).
        events = settings.PLANQK_ENGINE_WAIT == "events"
        wait = runtime.wait if events else (lambda handle, timeout, offset: runtime.clock_wait(handle, timeout))
        read_on_wake = events and runtime.waits_for_output
        last_checkpoint = last_heartbeat = last_cancel_check = last_read = time.monotonic()
        cancel_sent = engine_timeout = False
        while True:
            state = runtime.poll(handle)
            self.peak_memory_kb = state.peak_memory_kb or self.peak_memory_kb
            now = time.monotonic()
            if not state.running:
                # After poll() said "ended", every byte of output is there to read.
                self._read(final=True)
                break
            if read_on_wake or now - last_read >= READ_EVERY_SECONDS:
                # Not on every poll of a clock: reading costs a Docker API call, and logs are stored per checkpoint.
                self._read(final=False)
                last_read = now
            if not cancel_sent and now - last_cancel_check >= CANCEL_CHECK_SECONDS:
                last_cancel_check = now
                if self._cancel_requested():
                    self.platform_line("cancel requested: stopping the execution")
                    runtime.cancel(handle)
                    cancel_sent = True
                    continue
            if not cancel_sent and not engine_timeout and timezone.now() > hard_deadline:
                self.platform_line(f"still running after its {job.timeout_seconds} s timeout: stopping it")
                runtime.cancel(handle)
                engine_timeout = True
                continue
            due_checkpoint = self.follow.new_output and now - last_checkpoint >= CHECKPOINT_SECONDS
            if due_checkpoint or now - last_heartbeat >= heartbeat_every_seconds():
                self._checkpoint()
                last_checkpoint = last_heartbeat = now
            # Wait for the execution, but never past what is due next on the clock: the heartbeat,
            # the cancel check, a checkpoint of output read, the engine's own timeout.
            due = [last_heartbeat + heartbeat_every_seconds()]
            if not cancel_sent:
                due.append(last_cancel_check + CANCEL_CHECK_SECONDS)
            if self.follow.new_output:
                due.append(last_checkpoint + CHECKPOINT_SECONDS)
            if not read_on_wake:
                due.append(last_read + READ_EVERY_SECONDS)
            if not cancel_sent and not engine_timeout:
                due.append(now + max(0.0, (hard_deadline - timezone.now()).total_seconds()))
            wait(handle, max(0.0, min(due) - time.monotonic()), offset=self.follow.offset if read_on_wake else None)
        return self._outcome(state, cancel_sent=cancel_sent, engine_timeout=engine_timeout)

    def _cancel_requested(self) -> bool:
        row = Job.objects.filter(pk=self.job.pk).values_list("cancel_requested", "worker", "status").first()
        if row is None or row[1] != self.worker or row[2] != JobStatus.RUNNING:
            raise _LostOwnership
        return bool(row[0])

    def _read(self, *, final: bool) -> None:
        """Read all output available now and route it line by line."""
        follow = self.follow
        while True:
            text, next_offset = self.runtime.read_output(self.handle, follow.offset)
            if next_offset <= follow.offset:
                break
            follow.offset = next_offset
            follow.new_output = True
            lines = (follow.partial + text).split("\n")
            follow.partial = lines.pop()
            for line in lines:
                self._line(line + "\n")
            if not final:
                break  # at most one read (1 MB) per poll while it runs

    def _line(self, line: str) -> None:
        # Nothing is held back any more: no output line can be the outcome.
        for earlier in self.follow.held:
            self._emit(earlier)
        self.follow.held.clear()
        self._emit(line)

    def _emit(self, line: str) -> None:
        # Redacted before it is read: an interim result is stored too, and must not hold a secret.
        line = self.redact(line)
        kind, payload = parse_output_line(line)
        if kind == KIND_INTERIM:
            problem = json_problem(payload, max_depth=RESULT_MAX_DEPTH)
            if problem is not None:
                self.platform_line(f"an interim result {problem[1]}: it is not kept")
            elif self.interim_seq + len(self.follow.pending_interims) < max_interim_results():
                self.follow.pending_interims.append(payload)
            elif not self.interims_dropped:
                self.interims_dropped = True
                self.platform_line(f"more than {max_interim_results()} interim results: further ones are not kept")
        self.log(line)

    def _checkpoint(self) -> None:
        """Store logs, interim results, the read offset and the heartbeat together."""
        now = timezone.now()
        with transaction.atomic():
            self.writer.flush()
            self._store_interims()
            if not self.owned().update(
                heartbeat_at=now, output_offset=self.follow.saved_offset(), log_truncated=self.writer.truncated
            ):
                raise _LostOwnership
        self.follow.new_output = False

    def _outcome(self, state: Any, *, cancel_sent: bool, engine_timeout: bool) -> Outcome:
        job, follow = self.job, self.follow
        # The outcome comes from the runtime's result channel only; every line printed, the
        # runner's own final line too (it stays for people), is a log line.
        final = self.runtime.final_response(self.handle)
        for line in [*follow.held, follow.partial]:
            if line:
                self._emit(line if line.endswith("\n") else line + "\n")
        follow.held, follow.partial = [], ""
        service = job.service
        if state.cancelled or (cancel_sent and final is None):
            return Outcome(JobStatus.CANCELLED, code="job:cancelled", detail="Cancelled while it was running.")
        if state.timed_out or engine_timeout:
            return Outcome(
                JobStatus.FAILED,
                code="job:timeout",
                detail=f"The execution took longer than the service's timeout of {job.timeout_seconds} seconds "
                "and was stopped.",
            )
        if state.oom_killed:
            return Outcome(
                JobStatus.FAILED,
                code="job:out-of-memory",
                detail=f"The execution needed more than the service's {service.memory_mb} MB of memory "
                "and was stopped.",
            )
        if state.output_files_exceeded:
            limits = output_limits()
            return Outcome(
                JobStatus.FAILED,
                code="job:output-files-too-large",
                detail=f"The execution wrote far more into its output directory than a job keeps "
                f"({limits.max_files} files, {limits.max_total_bytes} bytes) and was stopped.",
            )
        if state.output_truncated:
            return Outcome(
                JobStatus.FAILED,
                code="job:output-too-large",
                detail=f"The execution printed more than {output_max_bytes()} bytes and was stopped.",
            )
        if final is not None:
            problem = json_problem(final.payload, max_depth=RESULT_MAX_DEPTH)
            if problem is not None:
                return Outcome(
                    JobStatus.FAILED,
                    code="job:result-not-storable",
                    detail=f"The program's {'result' if final.succeeded else 'error'} {problem[1]}; "
                    "the platform cannot store it.",
                )
        if final is not None and final.succeeded and state.exit_code == 0:
            return Outcome(JobStatus.SUCCEEDED, result=final.payload["result"], metadata=final.payload["metadata"])
        if final is not None and not final.succeeded:
            code, detail = str(final.payload["code"]), str(final.payload.get("detail") or "")
            return Outcome(JobStatus.FAILED, code=code[:100], detail=detail)
        if state.exit_code is None and self.taken_over:
            return Outcome(
                JobStatus.UNKNOWN,
                code="platform:worker-lost",
                detail="The worker running this job stopped, and when another worker took over, the execution "
                "had ended without a recorded outcome. Run the job again.",
            )
        how = (
            f"was killed by signal {-state.exit_code}"
            if state.exit_code is not None and state.exit_code < 0
            else f"exited with code {state.exit_code}"
            if state.exit_code is not None
            else "was killed"
        )
        return Outcome(
            JobStatus.FAILED,
            code="job:no-result",
            detail=f"The program {how} without printing its result; see the logs.",
        )

    # --- the end -------------------------------------------------------------------------------

    def _finish(self, outcome: Outcome) -> None:
        job = self.job
        outcome.detail = self.redact(outcome.detail)
        if outcome.status == JobStatus.SUCCEEDED and job.save_result_to_pool:
            self._save_result(outcome)
        if outcome.status == JobStatus.FAILED and outcome.code.startswith(("platform:", "job:")):
            self.platform_line(f"{outcome.code}: {outcome.detail}")
        stored = self._store_result_files()
        try:
            with transaction.atomic():
                self.writer.flush()
                self._store_interims()
                finished = Job.objects.finish(
                    job.pk,
                    status=outcome.status,
                    worker=self.worker,
                    code=outcome.code,
                    detail=outcome.detail,
                    result=outcome.result,
                    result_metadata=outcome.metadata,
                    log_truncated=self.writer.truncated,
                    output_offset=self.follow.saved_offset(),
                    peak_memory_kb=self.peak_memory_kb,
                )
                if finished is None:
                    raise _LostOwnership
                JobResultFile.objects.bulk_create(stored)
        except BaseException:
            _remove_stored(stored)
            raise
        self.finished = True
        job.refresh_from_db()

    def _store_result_files(self) -> list[JobResultFile]:
        """Copy the files the program left in its output directory into storage (rows unsaved:
        they are written with the final state, in its transaction). Refusals become log lines."""
        if self.handle is None or self.runtime is None or JobResultFile.objects.filter(job=self.job).exists():
            return []
        from django.core.files import File

        try:
            files, notes = self.runtime.result_files(self.handle, output_limits())
        except Exception:
            logger.exception("job %s: reading its result files failed", self.job.pk)
            self.platform_line("the result files could not be read (platform error); none are kept")
            return []
        for note in notes:
            self.platform_line(note)
        rows: list[JobResultFile] = []
        try:
            for item in files:
                row = JobResultFile(job=self.job, name=item.name, size_bytes=item.size, media_type=item.media_type)
                try:
                    with item.open() as fh:
                        row.file.save(item.name, File(fh), save=False)
                except OSError as exc:
                    self.platform_line(f"result file {item.name!r} could not be read ({exc.strerror or exc}): not kept")
                    continue
                rows.append(row)
        except BaseException:
            _remove_stored(rows)
            raise
        if rows:
            total = sum(row.size_bytes for row in rows)
            self.platform_line(f"{len(rows)} result file{'s' if len(rows) != 1 else ''} kept ({total} bytes)")
        return rows

    def _store_interims(self) -> None:
        if not self.follow.pending_interims:
            return
        rows = []
        for payload in self.follow.pending_interims:
            self.interim_seq += 1
            rows.append(InterimResult(job=self.job, seq=self.interim_seq, payload=payload))
        InterimResult.objects.bulk_create(rows)
        self.follow.pending_interims.clear()

    def _save_result(self, outcome: Outcome) -> None:
        from .services import job_save_result

        job = self.job
        job.result, job.result_metadata = outcome.result, outcome.metadata
        try:
            datafile = job_save_result(job=job)
        except ApplicationError as exc:
            # The result stays on the job; only the copy in the data pool is missing.
            self.platform_line(f"saving the result to a data pool failed: {exc.message}")
        except Exception:
            logger.exception("job %s: saving the result to a data pool failed", job.pk)
            self.platform_line("saving the result to a data pool failed (platform error)")
        else:
            self.platform_line(f"result saved to data pool file {datafile.name}")

    def _cleanup(self) -> None:
        if self.handle is None or self.runtime is None:
            return
        try:
            self.runtime.cleanup(self.handle)
        except Exception:  # the reaper's orphan sweep removes what is left
            logger.warning("job %s: cleanup of the execution failed", self.job.pk, exc_info=True)


class _PlatformFailure(ApplicationError):
    """Our side failed: ``message`` is for the operator's log, never for the subscriber."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code, status=500)


#: What a subscriber reads for a platform failure; the details (paths, exceptions) go to the
#: operator's log under the reference the subscriber is given.
_PLATFORM_TEXT = {
    "platform:runtime-unavailable": "The platform cannot run executions of this service right now.",
    "platform:not-built": "This version of the service has no build to run; its provider must build it again.",
    "platform:build-unavailable": "The platform could not prepare this version's build on the host that took the job.",
    "platform:secrets-unreadable": "The platform cannot read the secrets sent with this execution; send them again.",
}


def platform_outcome(job: Job, code: str, operator_detail: str) -> Outcome:
    """FAILED with ``code``, a public text and a reference id; the details only in the log."""
    reference = uuid.uuid4().hex[:12]
    logger.error("job %s: %s (reference %s): %s", job.pk, code, reference, operator_detail)
    text = _PLATFORM_TEXT.get(code, "The platform failed while running this job.")
    return Outcome(
        JobStatus.FAILED,
        code=code,
        detail=f"{text} Running it again may help; if not, tell the platform's operators and quote the "
        f"reference {reference}.",
    )


def _force_final(job_id: Any, worker: str) -> None:
    """Last resort when recording the outcome failed: FAILED with a platform error."""
    try:
        Job.objects.finish(
            job_id,
            status=JobStatus.FAILED,
            worker=worker,
            code="platform:error",
            detail="The platform could not record the outcome of this job. Run it again.",
        )
    except Exception:
        logger.exception("job %s: could not even force a final state; the reaper will", job_id)


def output_limits() -> Any:
    """The caps on an execution's result files, from the settings."""
    from planqk_runtime.outputs import OutputLimits

    return OutputLimits(
        max_files=int(settings.PLANQK_JOB_RESULT_FILES_MAX),
        max_file_bytes=int(settings.PLANQK_JOB_RESULT_FILE_MAX_MB) * 1024 * 1024,
        max_total_bytes=int(settings.PLANQK_JOB_RESULT_FILES_TOTAL_MB) * 1024 * 1024,
    )


def execution_environment(job: Job, secrets: dict[str, str]) -> dict[str, str]:
    """The platform's variables for one execution: the provider token, and for a current-
    generation version the generation (the runner binds run() the current way) and the secrets
    as ``SECRET_<NAME>`` (:mod:`planqk_runtime.secrets`)."""
    from planqk_runtime.runner import CURRENT, GENERATION_ENV
    from planqk_runtime.secrets import environment
    from services.models import Generation

    env = provider_environment(job)
    if job.service_version.generation == Generation.CURRENT:
        env[GENERATION_ENV] = CURRENT
        env.update(environment(secrets))
    return env


def _remove_stored(rows: list[Any]) -> None:
    for row in rows:
        try:
            row.file.storage.delete(row.file.name)
        except Exception:
            logger.warning("could not remove the stored result file %s", row.file.name, exc_info=True)


def provider_environment(job: Job) -> dict[str, str]:
    """The owner's provider token for IBM and D-Wave services, under the names SDKs read."""
    from accounts.selectors import provider_token_value

    variable = {"IBM": "QISKIT_IBM_TOKEN", "DWAVE": "DWAVE_API_TOKEN"}.get(job.service.quantum_backend)
    if variable is None:
        return {}
    token = provider_token_value(user=job.owner, provider=job.service.quantum_backend)
    return {variable: token} if token else {}


# --- the reaper ----------------------------------------------------------------------------------


def job_reap() -> dict[str, int]:
    """Finish what dead workers left behind; registered with ``planqk_portal.reaper``.

    - RUNNING with a stale heartbeat: settled by :func:`job_settle_stale`.
    - PENDING whose task seems lost: enqueued once more (the claim stops a second run); PENDING
      for a day: FAILED ``platform:not-started``.

    Executions of final jobs are each host's own to remove: :func:`job_reap_orphans` runs in the
    host's housekeeping (:mod:`hosts.housekeeping`), which the reaper sends to every live host.
    """
    from .services import job_enqueue_again

    now = timezone.now()
    counts = {
        "handed_over": 0,
        "lost": 0,
        "rerun": 0,
        "host_lost": 0,
        "waiting": 0,
        "requeued": 0,
        "unserved": 0,
        "expired": 0,
    }
    stale = now - timedelta(seconds=heartbeat_stale_seconds())
    ours = Job.objects.all()
    running = ours.filter(status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale)
    )
    fields = ("id", "heartbeat_at", "runtime_handle", "enqueue_count", "worker", "service__retry_on_host_loss")
    for job in running.select_related("service").only("service", *fields):
        counts[job_settle_stale(job, now=now)] += 1
    requeue_before = now - timedelta(seconds=pending_requeue_seconds())
    for job in ours.filter(status=JobStatus.PENDING, created_at__lt=requeue_before, enqueue_count__lt=2):
        with transaction.atomic():
            if job_enqueue_again(job=job):
                counts["requeued"] += 1
    counts["unserved"] = _note_unserved(now=now)
    counts["expired"] = Job.objects.expire_pending(created_before=now - timedelta(seconds=pending_expire_seconds()))
    return counts


def job_settle_stale(job: Job, *, now: Any) -> str:
    """The settlement rule for a RUNNING job whose heartbeat is stale; returns what it did.

    ``job`` carries what the reaper saw (``heartbeat_at``, ``worker``, ``runtime_handle``), and
    every change below is conditional on exactly that, so a worker that beat meanwhile, a second
    reaper or a cancel wins and this one changes nothing. The job's host is the host part of
    ``worker`` (:func:`worker_host`), its state :func:`hosts.selectors.host_state`:

    - no runtime handle (the execution never started), or handed over ``MAX_HANDOVERS`` times:
      FAILED ``platform:worker-lost`` ("lost");
    - host ALIVE or UNKNOWN (the worker process died, the host did not; or a job nobody claimed
      since a handover): handed to a new worker, which reattaches to the execution and reads on
      from the saved offset ("handed_over"). Reattaching works only on the host that runs the
      execution: a worker restarted there;
    - host SILENT (beyond a job's staleness, not yet ``PLANQK_HOST_LOST_SECONDS``): nothing yet
      ("waiting"), so a host that is only slow never sees its job run twice;
    - host LOST: when the service allows it (``Service.retry_on_host_loss``, default on) and the
      execution published no interim result, it starts again from the beginning on whichever
      worker takes it ("rerun": handle and read offset dropped, ``runtime_starts`` kept, so the
      job shows it ran twice); otherwise FAILED ``platform:host-lost``, not billed ("host_lost").

    Billing of a re-run: one job, one usage record, so a per-execution price is charged once
    (the first start was the platform's loss); its duration counts from the re-run's start,
    which also restarts the engine's timeout. A worker of the lost host that comes back owns
    nothing any more (``worker`` changed): its writes find no row, and it stops its own execution
    (:meth:`Execution._still_the_jobs_execution`).
    """
    from hosts.selectors import HostState, host_state

    from .services import job_enqueue

    seen = Job.objects.filter(heartbeat_at=job.heartbeat_at, worker=job.worker)
    if not job.runtime_handle or job.enqueue_count >= MAX_HANDOVERS:
        detail = (
            "The worker running this job stopped before the execution started. Run the job again."
            if not job.runtime_handle
            else f"Workers following this job stopped {MAX_HANDOVERS} times; the platform gave up on it."
        )
        finished = seen.finish(job.pk, status=JobStatus.FAILED, code="platform:worker-lost", detail=detail)
        return "lost" if finished else "waiting"
    host = worker_host(job.worker)
    state = host_state(host, now=now)
    if state in (HostState.ALIVE, HostState.UNKNOWN):
        if Job.objects.hand_over(job.pk, heartbeat_at=job.heartbeat_at, host=host):
            with transaction.atomic():
                # To the host running the execution: only a worker there can reattach to it.
                job_enqueue(job_id=job.pk, on_host=host if state == HostState.ALIVE else "")
            return "handed_over"
        return "waiting"
    if state == HostState.SILENT:
        return "waiting"
    lost_for = f"host {host} stopped answering (no heartbeat for over {settings.PLANQK_HOST_LOST_SECONDS} s)"
    if job.service.retry_on_host_loss and not InterimResult.objects.filter(job_id=job.pk).exists():
        from django.db.models import F

        with transaction.atomic():
            # Not a state change (it stays RUNNING): the execution is dropped and claimed afresh.
            if not seen.filter(pk=job.pk, status=JobStatus.RUNNING).update(
                worker="",
                runtime_handle=None,
                output_offset=0,
                started_at=now,
                heartbeat_at=now,
                enqueue_count=F("enqueue_count") + 1,
            ):
                return "waiting"
            _reaper_line(job, f"{lost_for}; the execution starts again from the beginning on another host")
            job_enqueue(job_id=job.pk)
        return "rerun"
    why = (
        "it had already published interim results"
        if job.service.retry_on_host_loss
        else "this service does not allow running an execution again"
    )
    with transaction.atomic():
        finished = seen.finish(
            job.pk,
            status=JobStatus.FAILED,
            code="platform:host-lost",
            detail=f"The host running this job stopped answering, and it was not run again because {why}. "
            "You are not charged for it; run the job again.",
        )
        if finished is None:
            return "waiting"
        _reaper_line(job, f"{lost_for}; not run again because {why}")
    return "host_lost"


def _note_unserved(*, now: Any) -> int:
    """A platform line in the log of each job waiting (PENDING past a job's staleness) for a
    host no live one is (its version's runtime, its service's pinned queue): the job page says
    why it does not start. Once per job (a waiting job has no log yet); it stays PENDING, and the
    pending expiry (``PLANQK_JOB_PENDING_EXPIRE_SECONDS``) fails it if no such host comes."""
    from hosts.routing import why_no_host
    from hosts.selectors import hosts_alive

    waiting = (
        Job.objects.filter(status=JobStatus.PENDING, created_at__lt=now - timedelta(seconds=heartbeat_stale_seconds()))
        .exclude(Exists(JobLogChunk.objects.filter(job=OuterRef("pk"))))
        .select_related("service_version__service")
    )
    hosts, noted, reasons = hosts_alive(now=now), 0, {}
    for job in waiting[:500]:
        version = job.service_version
        if version.pk not in reasons:
            reasons[version.pk] = why_no_host(version, hosts)
        if reasons[version.pk]:
            _reaper_line(job, f"waiting: {reasons[version.pk]}; the job starts when one does")
            noted += 1
    return noted


def _reaper_line(job: Job, text: str) -> None:
    """A platform line in the job's log, written by the reaper (no worker follows the job now)."""
    writer = ChunkedLogWriter(JobLogChunk, "job", job, max_bytes=log_max_bytes())
    writer.write(f"{PLATFORM_PREFIX}{text}\n")
    writer.flush()


def job_reap_orphans() -> int:
    """Kill and remove this host's executions whose job is final, or that a re-run superseded
    (the job started again after its host counted as lost, and this host's old execution
    survived its worker: a worker restarted after more than ``PLANQK_HOST_LOST_SECONDS``);
    returns how many were removed. Runs in each host's housekeeping (:mod:`hosts.housekeeping`)."""
    alive = Job.objects.filter(status__in=[JobStatus.PENDING, JobStatus.RUNNING]).values_list(
        "id", "runtime_starts", "runtime_handle"
    )
    # The first run's name is skipped here only while it may still be the job's current run.
    known = {f"job-{job_id}" for job_id, starts, handle in alive if not _superseded(1, starts, handle)}
    used = Job.objects.exclude(runtime="").values_list("runtime", flat=True).distinct()
    names = {settings.PLANQK_RUNTIME, *used}
    removed = 0
    for name in sorted(names):
        try:
            runtime = runtime_for(name)
            orphans = runtime.orphans(known)
        except Exception as exc:  # e.g. no Docker engine here: nothing of it to clean
            logger.info("reaper: runtime %s has no orphans to check: %s", name, exc)
            continue
        for handle in orphans:
            if _is_orphan(handle):
                try:
                    runtime.kill_orphan(handle)
                    removed += 1
                except Exception:
                    logger.warning("reaper: removing execution %s failed", handle.execution_id, exc_info=True)
    return removed


def _superseded(run: int, runtime_starts: int, runtime_handle: Any) -> bool:
    """Whether run ``run`` (1 for ``job-<id>``, n for ``job-<id>-run<n>``) of a job that is not
    final can no longer be its current one: an earlier run than the last started, or the last
    started after a re-run dropped its handle. The run being started now is ``runtime_starts + 1``
    until ``record_start`` counts it, so it is never superseded."""
    return run < runtime_starts or (run == runtime_starts and runtime_handle is None)


def _is_orphan(handle: Any) -> bool:
    execution = str(handle.execution_id)
    if not execution.startswith("job-"):
        return False  # not a job's execution (runtime tests, benchmarks): not ours to remove
    match = _EXECUTION_JOB_ID.fullmatch(execution)
    try:
        row = (
            Job.objects.filter(pk=match[1] if match else execution[4:])
            .values_list("status", "runtime_starts", "runtime_handle")
            .first()
        )
    except Exception:
        return False
    if row is not None:
        status, starts, stored = row
        run = int(execution.rsplit("-run", 1)[1]) if match and "-run" in execution else 1
        return status in JOB_FINAL_STATES or _superseded(run, starts, stored)
    # No such job here: another database shares this folder, or the job was deleted. Only
    # remove it once no execution of any deployment could still be running.
    started = handle.started_at
    limit = int(settings.PLANQK_JOB_MAX_TIMEOUT) + 3600
    return isinstance(started, int | float) and time.time() - started > limit
