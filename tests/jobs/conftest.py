"""Fixtures for jobs: READY service versions built for real from the sample services."""

from __future__ import annotations

import textwrap
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

SUM_DATA = {"values": [100, 50, 200, 70, 0.69]}
SUM_PARAMS = {"round_off": False}


@pytest.fixture
def make_version(tmp_path) -> Iterator[Callable[..., object]]:
    """``make_version(owner, sample="sum", program=None, runtime=None, **service_fields)``.

    Creates a Service and a READY ServiceVersion built by the runtime (the local runtime reuses
    its environment for equal requirements, so only the first build of a session creates one).
    ``program`` replaces ``src/program.py`` of the sample with the given source.
    """
    from django.core.files.base import ContentFile

    from jobs.runtime_factory import get_runtime
    from planqk_samples import SAMPLES, sample_files
    from planqk_template import write_files, zip_bytes
    from runtimes import BuildSpec
    from services.models import BuildStatus, Service, ServiceVersion

    built: list[tuple[object, dict]] = []

    def factory(owner, sample: str = "sum", *, program: str | None = None, runtime: str | None = None, **fields):
        files = dict(sample_files(sample))
        if program is not None:
            files["src/program.py"] = textwrap.dedent(program).encode()
        source = tmp_path / uuid.uuid4().hex
        write_files(source, files)
        fields.setdefault("name", f"{sample.replace('_', '-')}-{uuid.uuid4().hex[:6]}")
        fields.setdefault("title", SAMPLES[sample].title)
        fields.setdefault("quantum_backend", SAMPLES[sample].quantum_backend)
        service = Service.objects.create(owner=owner, **fields)
        requirements = files.get("requirements.txt", b"").decode()
        version = ServiceVersion.objects.create(
            service=service,
            version="1.0.0",
            api_spec=files.get("openapi-spec.yml", b"").decode(),
            requirements=requirements,
            status=BuildStatus.BUILDING,
            created_by=owner,
        )
        # Its stored archive, as an upload has one: a host without the build's folders unpacks it.
        version.archive.save("user_code.zip", ContentFile(zip_bytes(files)), save=False)
        rt = get_runtime(runtime)
        result = rt.build(
            BuildSpec(version_id=str(version.id), source_dir=source, requirements=requirements), log=lambda line: None
        )
        built.append((rt, result.handle))
        version.runtime = rt.name
        version.build_handle = result.handle
        version.status = BuildStatus.READY
        version.save()
        return version

    yield factory
    for rt, handle in built:
        rt.remove_build(handle)


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, interval: float = 0.1) -> object:
    """Poll ``predicate`` until it returns something truthy (a deadline, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def wait_final(job, timeout: float = 90.0):
    """Reload ``job`` until it reaches a final state."""
    from jobs.models import Job

    return wait_for(lambda: (j := Job.objects.get(pk=job.pk)).is_final and j, timeout=timeout)


def log_text(job) -> str:
    from jobs.models import JobLogChunk

    return "".join(JobLogChunk.objects.filter(job=job).order_by("seq").values_list("text", flat=True))


@pytest.fixture
def private_worker(django_db_blocker):
    """Start Celery workers that consume only a queue of their own.

    A job sent there is run by exactly that worker, even when the session's shared worker is
    alive, so a test can kill the worker that runs it. Stopped afterwards.
    """
    import os
    import subprocess
    import sys

    from django.conf import settings

    from tests.conftest import ROOT, WorkerProcess, _database_url

    started: list[WorkerProcess] = []

    def start(queue: str) -> WorkerProcess:
        log_dir = ROOT / "var" / "test-workers"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"worker-{queue}.log"
        with django_db_blocker.unblock():
            database_url = _database_url()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PLANQK_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,  # what it enqueues goes to the shared queue
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PLANQK_DATA_DIR": str(settings.PLANQK_DATA_DIR),
            "DJANGO_DEBUG": "true",
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        cmd = [
            sys.executable, "-m", "celery", "-A", "planqk_portal", "worker", "-l", "info", "-Q", queue,
            "--concurrency", "1", "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = WorkerProcess(proc=proc, log_path=log_path)
        started.append(worker)
        wait_for(lambda: " ready." in worker.log() or proc.poll() is not None, timeout=60)
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited early:\n{worker.log()}")
        return worker

    yield start
    for worker in started:
        worker.stop()
