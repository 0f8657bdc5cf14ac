"""A Docker version built on host A runs on host B, whose engine never saw its image (issue 22).

Two real worker hosts with ``PLANQK_RUNTIME=docker``, each on its own Docker engine (this
machine's and a second dockerd with its own image store), one PostgreSQL and Redis and a real
registry (Debian's docker-registry on loopback). Host A builds the version through the build task
and pushes the image; host B pulls it by digest and runs the job to SUCCEEDED, also when someone
has since pushed other code under the tag host A pushed.
"""

from __future__ import annotations

import re
import uuid

import pytest

from jobs.models import JobStatus
from jobs.tasks import execute_job
from services.models import BuildStatus, ServiceVersion
from tests.hosts.test_host_loss import subscribed_job
from tests.jobs.conftest import log_text, wait_final, wait_for

# The registry and the second engine are session fixtures of the runtime's registry tests.
from tests.runtimes.test_docker_registry import Engine, Registry, registry, second_engine  # noqa: F401
from tests.services.conftest import make_provider
from tests.services.helpers import build_log

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FIRST_ENGINE = "unix:///var/run/docker.sock"


def docker_host_env(engine: str, registry_prefix: str, base_image: str) -> dict[str, str]:
    """A Docker host's settings: its own engine, the registry every host shares."""
    return {
        "PLANQK_RUNTIME": "docker",
        "PLANQK_HOST_RUNTIMES": "docker",
        "DOCKER_HOST": engine,
        "PLANQK_DOCKER_REGISTRY": registry_prefix,
        "PLANQK_BASE_IMAGE": base_image,
    }


@pytest.fixture
def built_images(tmp_path):
    """``(prefix, build handle)`` of the versions a test built: their images leave the first engine
    afterwards (the second engine goes with the test session)."""
    import docker
    from runtimes.docker import DockerConfig, DockerRuntime

    built: list[tuple[str, dict]] = []
    yield built
    client = docker.DockerClient(base_url=FIRST_ENGINE)
    for prefix, handle in built:
        DockerRuntime(DockerConfig(data_dir=tmp_path, registry=prefix), client=client).remove_build(handle)


def built_on_host_a(start_host, settings, prefix: str, base_image: str, sample: str, **fields) -> tuple:
    """Host A (this machine's engine) builds a new service's version through the build task."""
    from planqk_samples import sample_zip
    from services import services

    # The platform's runtime, the same on every host: the new version's build goes to Docker hosts.
    settings.PLANQK_RUNTIME = "docker"
    # Host A takes the build the new service enqueues (nothing else consumes this test's queues).
    host_a = start_host("host-a", env=docker_host_env(FIRST_ENGINE, prefix, base_image))
    service = services.service_create(
        owner=make_provider(), name=f"{sample}-{uuid.uuid4().hex[:6]}", archive=sample_zip(sample), **fields
    )
    version = service.versions.get()
    wait_for(
        lambda: ServiceVersion.objects.get(pk=version.pk).status in (BuildStatus.READY, BuildStatus.FAILED),
        timeout=300,
    )
    version.refresh_from_db()
    assert version.status == BuildStatus.READY, build_log(version)
    return host_a, version


def test_a_docker_version_built_on_host_a_runs_on_host_b_from_the_registry(
    user,
    settings,
    start_host,
    built_images,
    base_image: str,
    registry: Registry,  # noqa: F811 - the fixture imported above
    second_engine: Engine,  # noqa: F811
):
    import docker.errors

    import docker
    from runtimes.docker import image_tag

    prefix = f"{registry.address}/hosts{uuid.uuid4().hex[:6]}"
    host_a, version = built_on_host_a(start_host, settings, prefix, base_image, "sum", skip_example_run=True)
    built_images.append((prefix, version.build_handle))
    handle = version.build_handle
    reference = f"{prefix}/{image_tag(str(version.pk))}@{handle['digest']}"
    assert f"pushed to {handle['pushed']} digest {handle['digest']} from host host-a" in build_log(version)
    engine_b = docker.DockerClient(base_url=second_engine.host)
    with pytest.raises(docker.errors.ImageNotFound):
        engine_b.images.get(reference)

    # Someone pushes other code (the bare base image) under the tag host A pushed: host B runs
    # what host A built all the same, because it pulls by digest.
    engine_a = docker.DockerClient(base_url=FIRST_ENGINE)
    repository, tag = handle["pushed"].rsplit(":", 1)
    engine_a.images.get(base_image).tag(repository, tag)
    for event in engine_a.api.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in event, event

    host_a.stop()
    host_b = start_host(
        "host-b", queue=f"host-b-{uuid.uuid4().hex[:8]}", env=docker_host_env(second_engine.host, prefix, base_image)
    )
    job = subscribed_job(version, user, data={"values": [1, 2, 3.5]})
    execute_job.apply_async(args=[str(job.pk)], queue=host_b.queue)
    job = wait_final(job, timeout=240)
    logs = log_text(job)
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_detail, logs)
    assert job.result == {"sum": 6.5}
    assert job.worker.startswith("host-b:")
    assert f"host host-b: pulled {reference} in " in logs, logs
    assert logs.index("pulled ") < logs.index("started on host host-b")
    assert reference in engine_b.images.get(reference).attrs["RepoDigests"]

    # A host whose registry setting differs from the building host's finds nothing to pull: the
    # job fails with the platform error of a build a host cannot prepare, not billed; the
    # operator's log (the worker's) says what was pulled where, under the job's reference.
    host_b.stop()
    host_c = start_host(
        "host-c",
        queue=f"host-c-{uuid.uuid4().hex[:8]}",
        env=docker_host_env(second_engine.host, f"{registry.address}/elsewhere", base_image),
    )
    failed = subscribed_job(version, user, data={"values": [1]})
    execute_job.apply_async(args=[str(failed.pk)], queue=host_c.queue)
    failed = wait_final(failed, timeout=120)
    assert failed.status == JobStatus.FAILED
    assert failed.error_code == "platform:build-unavailable", (failed.error_code, failed.error_detail)
    assert "could not prepare this version's build on the host that took the job" in failed.error_detail
    assert "Traceback" not in failed.error_detail
    assert not failed.billable
    reference_id = re.search(r"reference ([0-9a-f]{12})", failed.error_detail).group(1)
    pulled = f"pulling {registry.address}/elsewhere/{image_tag(str(version.pk))}@{handle['digest']} on host host-c"
    operator_line = next(line for line in host_c.log().splitlines() if reference_id in line)
    assert f"{pulled} failed: " in operator_line, operator_line
    engine_b.images.remove(reference, force=True)


def test_a_docker_job_on_a_lost_host_runs_again_on_another_engine_once(
    user,
    settings,
    start_host,
    built_images,
    base_image: str,
    registry: Registry,  # noqa: F811
    second_engine: Engine,  # noqa: F811
):
    """Host A's machine dies mid-job (its worker and its engine's container): the job runs again
    from the start on host B, whose engine pulls the image, and ends once, billed once."""
    import docker
    from jobs import engine
    from jobs.models import InterimResult
    from tests.hosts.test_host_loss import let_time_pass, lost_seconds, usage_of

    prefix = f"{registry.address}/loss{uuid.uuid4().hex[:6]}"
    host_a, version = built_on_host_a(start_host, settings, prefix, base_image, "slow", skip_example_run=True)
    built_images.append((prefix, version.build_handle))
    host_b = start_host("host-b", env=docker_host_env(second_engine.host, prefix, base_image))
    job = subscribed_job(version, user, params={"steps": 2, "sleep": 8})
    execute_job.apply_async(args=[str(job.pk)], queue=host_a.queue)
    wait_for(lambda: "started on host host-a" in log_text(job), timeout=90)
    job.refresh_from_db()
    container = job.runtime_handle["container"]
    host_a.crash()
    # The machine is gone, and so is what ran on its engine.
    docker.DockerClient(base_url=FIRST_ENGINE).containers.get(container).remove(force=True)
    assert not InterimResult.objects.filter(job=job).exists()

    let_time_pass(job, "host-a", seconds=lost_seconds())
    counts = engine.job_reap()
    assert counts["rerun"] == 1, counts
    job = wait_final(job, timeout=240)
    logs = log_text(job)
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_detail, logs)
    assert job.result["steps"] == 2
    assert job.worker.startswith("host-b:")
    assert job.runtime_starts == 2
    assert usage_of(job) == [("SUCCEEDED", 70)]
    assert logs.index("started on host host-a") < logs.index("host host-b: pulled ")
    assert logs.index("host host-b: pulled ") < logs.index("started on host host-b")
    assert logs.count("step 2 of 2 done") == 1, logs
    assert host_b.proc.poll() is None
