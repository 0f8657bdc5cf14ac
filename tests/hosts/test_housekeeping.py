"""Per-host housekeeping (hosts.housekeeping): the reaper sends every live host, on its own queue,
one task that cleans what only that host holds: executions of final jobs, idle environments no
build uses, and its copies (code folders, images) of deleted versions.

The unit tests run the steps in this process against folders and the local Docker engine; the
others run real worker hosts, each with its own data directory (tests/hosts/conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from hosts import housekeeping
from hosts.models import DeletedVersion, WorkerHost
from hosts.services import host_beat
from jobs.models import Job, JobStatus
from planqk_portal import reaper
from tests.hosts.test_local_builds_move import built_on_a, run_on  # noqa: F401 - built_on_a: the fixture
from tests.hosts.test_routing import d, provider, queues  # noqa: F401 - provider, queues: fixtures
from tests.jobs.conftest import log_text, wait_final, wait_for
from tests.runtimes.test_docker_registry import registry, second_engine, two_hosts  # noqa: F401 - fixtures

TASK = "hosts.tasks.host_housekeeping"


def sent_to(seen: list[tuple[str, str]], *names: str) -> list[str]:
    """The queues of the housekeeping messages published for hosts ``names``, in order."""
    wanted = {d(f".host.{name}") for name in names}
    return [queue for task, queue in seen if task == TASK and queue in wanted]


# --- the fan-out -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_two_reaper_runs_send_one_housekeeping_to_each_live_host_and_none_to_a_silent_one(
    queues,  # noqa: F811 - the fixture imported above
    settings,
):
    names = [f"hk-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    live_a, live_b, silent = names
    for name in names:
        host_beat(name=name, runtimes=["local"])
    WorkerHost.objects.filter(name=silent).update(last_seen=timezone.now() - timedelta(hours=1))

    assert "hosts.housekeeping.housekeeping_fan_out" in reaper.registered()
    reaper.run_all()
    reaper.run_all()
    assert sorted(sent_to(queues, *names)) == sorted([d(f".host.{live_a}"), d(f".host.{live_b}")])

    # Host A's task ran: its claim ends, so the next run sends it another; B's is still out.
    settings.PLANQK_HOST_NAME = live_a
    claim = WorkerHost.objects.get(name=live_a).housekeeping_sent_at
    counts = housekeeping.host_housekeeping(host=live_a, sent_at=claim.isoformat())
    assert set(counts) == {"orphans", "environments", "warm_runners", "deleted_versions"}
    row = WorkerHost.objects.get(name=live_a)
    assert row.housekeeping_sent_at is None
    assert row.housekeeping == counts
    assert row.housekeeping_at
    del queues[:]
    reaper.run_all()
    assert sent_to(queues, *names) == [d(f".host.{live_a}")]

    # A claim whose task never ended (its message expired) does not block the host for ever.
    WorkerHost.objects.filter(name=live_b).update(
        housekeeping_sent_at=timezone.now() - timedelta(seconds=housekeeping.HOUSEKEEPING_EXPIRES_SECONDS + 5)
    )
    del queues[:]
    reaper.run_all()
    assert sent_to(queues, *names) == [d(f".host.{live_b}")]


@pytest.mark.django_db
def test_the_reaper_leaves_executions_to_their_hosts_housekeeping(settings, user, make_version):
    from jobs import engine

    version = make_version(user, "sum")
    job = Job.objects.create(
        service=version.service, service_version=version, owner=user, status=JobStatus.FAILED, worker=""
    )
    leftover = engine.runtime_for(version.runtime).executions_dir / f"job-{job.pk}"
    leftover.mkdir(parents=True)
    try:
        reaper.run_all()  # whichever worker runs the reaper is not the host of this folder
        assert leftover.exists()
        settings.PLANQK_HOST_NAME = "hk-this"
        assert housekeeping.host_housekeeping(host="hk-other") == {}  # a message for another host
        assert leftover.exists()
        assert housekeeping.host_housekeeping(host="hk-this")["orphans"] >= 1
        assert not leftover.exists()
    finally:
        leftover.exists() and leftover.rmdir()


# --- what a host removes -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_hosts_copies_of_deleted_local_versions_and_idle_unused_environments_are_removed(settings, tmp_path):
    settings.PLANQK_DATA_DIR = tmp_path
    settings.PLANQK_ENV_IDLE_DAYS = 1
    settings.PLANQK_HOST_NAME = "hk-local"
    builds = tmp_path / "builds"
    deleted, live = str(uuid.uuid4()), str(uuid.uuid4())
    for version_id in (deleted, live):
        (builds / version_id / "src").mkdir(parents=True)
        for suffix in ("runner.lock", "code.lock", "code-digest"):
            (builds / f".{version_id}.{suffix}").write_text("")
    # A stored id that is a path (edited in the database) names no folder.
    victim = tmp_path / "victim"
    victim.mkdir()
    DeletedVersion.objects.create(version_id=deleted, runtime="local", deleted_at=timezone.now())
    DeletedVersion.objects.create(version_id="../victim", runtime="local", deleted_at=timezone.now())
    DeletedVersion.objects.create(version_id=str(uuid.uuid4()), runtime="no-such-runtime", deleted_at=timezone.now())
    # Environments: one unused and idle for two days, one unused but just used, none kept by a build.
    idle, recent = tmp_path / "envs" / ("a" * 64), tmp_path / "envs" / ("b" * 64)
    for env in (idle, recent):
        env.mkdir(parents=True)
        (env / ".planqk-ready").write_text("")
    two_days_ago = time.time() - 2 * 86400
    os.utime(idle / ".planqk-ready", (two_days_ago, two_days_ago))
    os.utime(idle, (two_days_ago, two_days_ago))

    counts = housekeeping.host_housekeeping(host="hk-local")
    assert (counts["environments"], counts["deleted_versions"]) == (1, 1)
    assert not (builds / deleted).exists()
    assert not list(builds.glob(f".{deleted}.*"))
    assert (builds / live / "src").is_dir()
    assert len(list(builds.glob(f".{live}.*"))) == 3
    assert victim.is_dir()
    assert not idle.exists()
    assert recent.is_dir()


def test_deleting_a_service_remembers_its_built_versions(
    provider,  # noqa: F811 - the fixture imported above
    django_capture_on_commit_callbacks,
    db,
):
    from planqk_samples import sample_zip
    from services import services
    from services.models import ServiceVersion

    with django_capture_on_commit_callbacks(execute=False):
        service = services.service_create(owner=provider, name=f"hk-{uuid.uuid4().hex[:6]}", archive=sample_zip("sum"))
    version = service.versions.get()
    ServiceVersion.objects.filter(pk=version.pk).update(runtime="local", build_handle={"env_key": "x"})
    never_built = ServiceVersion.objects.create(service=service, version="1.0.1")
    with django_capture_on_commit_callbacks(execute=False):
        services.service_delete(service=service)
    assert list(DeletedVersion.objects.values_list("version_id", "runtime")) == [(str(version.pk), "local")]
    assert not DeletedVersion.objects.filter(version_id=str(never_built.pk)).exists()


@pytest.mark.django_db
def test_the_images_of_deleted_docker_versions_are_removed_from_this_engine_and_no_other(settings, base_image):
    # base_image: built on a fresh engine (this test may be the run's first to need it).
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # pragma: no cover - the engine is part of this machine's setup
        pytest.skip(f"no Docker engine: {exc}")
    base = client.images.get(base_image)
    settings.PLANQK_DOCKER_REGISTRY = own_registry = "127.0.0.1:5999/hk"
    settings.PLANQK_HOST_NAME = "hk-docker"
    deleted, live, other = (f"hk{uuid.uuid4().hex[:10]}" for _ in range(3))
    removed = [f"planqk-svc-{deleted}:latest", f"{own_registry}/planqk-svc-{deleted}:v1"]
    kept = [
        f"planqk-svc-{live}:latest",  # a version that was not deleted
        f"hk-foreign-{other}/planqk-svc-{deleted}:latest",  # someone else's repository
        f"127.0.0.1:5998/other/planqk-svc-{deleted}:v1",  # a registry this host does not use
        f"hk-foreign-{other}:latest",
    ]
    for name in removed + kept:
        repository, tag = name.rsplit(":", 1)
        assert base.tag(repository, tag)
    DeletedVersion.objects.create(version_id=deleted, runtime="docker", deleted_at=timezone.now())
    try:
        assert housekeeping.host_housekeeping(host="hk-docker")["deleted_versions"] == 1
        tags = {tag for image in client.images.list() for tag in image.tags}
        assert not tags & set(removed)
        assert set(kept) <= tags
        assert client.images.get(base.id)  # untagged only: the image itself stays for its other names
    finally:
        for name in removed + kept:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(name)


# --- with real worker hosts --------------------------------------------------------------------


@pytest.fixture
def envs_idle_at_once(monkeypatch):
    """Hosts started after this collect an environment no build uses at their next housekeeping."""
    monkeypatch.setenv("PLANQK_ENV_IDLE_DAYS", "0")


def housekept(name: str, since) -> bool:
    return WorkerHost.objects.filter(name=name, housekeeping_at__gt=since, housekeeping_sent_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_deleted_version_leaves_nothing_on_any_host(
    envs_idle_at_once,
    built_on_a,  # noqa: F811 - the fixture imported above
):
    from applications.models import Subscription
    from services import services
    from tests.conftest import make_user

    version, _module, host_a, host_b, _log, _env = built_on_a
    key = version.build_handle["env_key"]
    job = wait_final(run_on(host_b, version, make_user()), timeout=180)
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, log_text(job), host_b.log()[-3000:])
    copies = {host.name: host.data_dir / "builds" / str(version.pk) for host in (host_a, host_b)}
    envs = {host.name: host.data_dir / "envs" / key for host in (host_a, host_b)}
    assert all(path.is_dir() for path in [*copies.values(), *envs.values()])

    Subscription.objects.filter(service=version.service).update(ended_at=timezone.now())
    services.service_delete(service=version.service)
    # The removal task removes one host's copy right away (whichever host of the runtime took it).
    wait_for(lambda: sum(path.exists() for path in copies.values()) == 1, timeout=60)

    since = timezone.now()
    assert housekeeping.housekeeping_fan_out() >= 2  # (the run's other hosts get theirs too)
    wait_for(lambda: housekept(host_a.name, since) and housekept(host_b.name, since), timeout=60)
    assert not any(path.exists() for path in copies.values())
    assert not any(path.exists() for path in envs.values())
    assert WorkerHost.objects.get(name=host_b.name).housekeeping["environments"] >= 1


@pytest.mark.django_db(transaction=True)
def test_an_orphan_execution_is_removed_by_its_own_hosts_housekeeping(start_host, user, make_version):
    host_a = start_host("host-a")
    host_b = start_host("host-b", queue=f"host-b-{uuid.uuid4().hex[:8]}")
    version = make_version(user, "sum")

    def job(status: str) -> Job:
        return Job.objects.create(
            service=version.service, service_version=version, owner=user, status=status, worker=""
        )

    finished, pending = job(JobStatus.FAILED), job(JobStatus.PENDING)
    orphan = host_b.data_dir / "executions" / f"job-{finished.pk}"
    waiting = host_b.data_dir / "executions" / f"job-{pending.pk}"
    for folder in (orphan, waiting):
        folder.mkdir(parents=True)

    # B is cut off (silent): only A gets a housekeeping, and A cannot see B's folders.
    host_b.pause()
    try:
        WorkerHost.objects.filter(name="host-b").update(last_seen=timezone.now() - timedelta(hours=1))
        since = timezone.now()
        housekeeping.housekeeping_fan_out()
        wait_for(lambda: housekept("host-a", since), timeout=60)
        assert WorkerHost.objects.get(name="host-b").housekeeping_sent_at is None
        assert orphan.is_dir()
    finally:
        host_b.resume()
    wait_for(lambda: WorkerHost.objects.get(name="host-b").last_seen > since, timeout=30)

    since = timezone.now()
    housekeeping.housekeeping_fan_out()
    wait_for(lambda: housekept("host-b", since), timeout=60)
    assert not orphan.exists()
    assert waiting.is_dir()  # its job is not final
    assert WorkerHost.objects.get(name="host-b").housekeeping["orphans"] == 1
    assert host_a.proc.poll() is None


@pytest.mark.django_db
def test_each_engine_loses_its_copy_of_a_deleted_docker_version_pulled_by_digest(
    two_hosts,  # noqa: F811 - the fixture imported above
    second_engine,  # noqa: F811
    settings,
    monkeypatch,
):
    import docker.errors

    from runtimes.docker import image_tag
    from tests.runtimes.test_docker_registry import _build

    build, _ = _build(two_hosts)
    state, output, _final = two_hosts.b.run(build, data={"values": [1]})
    assert state.exit_code == 0, output
    pulled = f"{two_hosts.registry}/{image_tag(build.version_id)}@{build.digest}"
    engine_a, engine_b = two_hosts.a.runtime.client, two_hosts.b.runtime.client
    assert engine_b.images.get(pulled).attrs["RepoTags"] == []  # host B holds it by its digest only
    DeletedVersion.objects.create(version_id=build.version_id, runtime="docker", deleted_at=timezone.now())
    settings.PLANQK_DOCKER_REGISTRY = two_hosts.registry

    # Host B's housekeeping: its engine's copy goes, host A's stays for A's own.
    monkeypatch.setenv("DOCKER_HOST", second_engine.host)
    assert housekeeping.deleted_versions_remove() == 1
    with pytest.raises(docker.errors.ImageNotFound):
        engine_b.images.get(pulled)
    assert engine_a.images.get(build.image)

    monkeypatch.delenv("DOCKER_HOST")
    assert housekeeping.deleted_versions_remove() == 1
    for name in (build.image, build.pushed, pulled):
        with pytest.raises(docker.errors.ImageNotFound):
            engine_a.images.get(name)
    assert housekeeping.deleted_versions_remove() == 0  # nothing left here
