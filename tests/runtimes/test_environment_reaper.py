"""The reaper removes local environments no current build uses, once idle for PLANQK_ENV_IDLE_DAYS."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from jobs.runtime_factory import environments_reap, get_runtime
from planqk_portal import reaper
from planqk_samples import sample_files
from runtimes import BuildSpec

from .conftest import local_wheel

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def _source(root: Path) -> Path:
    folder = root / uuid.uuid4().hex[:8]
    for relative, content in sample_files("sum").items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content)
    return folder


def _age(env_dir: str, days: float) -> None:
    """Make an environment look unused for ``days`` (its ready marker's mtime says when it was used)."""
    then = time.time() - days * 86400
    os.utime(Path(env_dir) / ".planqk-ready", (then, then))


def test_each_hosts_housekeeping_reaps_its_environments(monkeypatch) -> None:
    """Environments are a host's own: every host's housekeeping collects them (hosts.housekeeping),
    not the periodic reaper on whichever host it runs."""
    from hosts import housekeeping
    from hosts.selectors import host_name
    from jobs import engine, runtime_factory

    reaped = []
    monkeypatch.setattr(runtime_factory, "environments_reap", lambda: reaped.append(1) or {"removed": 3})
    # The other steps are not this test's: they would touch the run's executions.
    monkeypatch.setattr(engine, "job_reap_orphans", lambda: 0)
    monkeypatch.setattr(housekeeping, "deleted_versions_remove", lambda: 0)
    counts = housekeeping.host_housekeeping(host=host_name())
    assert reaped == [1]
    assert counts["environments"] == 3
    assert "jobs.runtime_factory.environments_reap" not in reaper.registered()


def test_unused_idle_environments_are_removed_and_the_others_kept(settings, user) -> None:
    from services.models import BuildStatus, Service, ServiceVersion

    data = Path(tempfile.mkdtemp(prefix="planqk-envgc-"))
    data.chmod(0o755)
    settings.PLANQK_DATA_DIR = data
    settings.PLANQK_ENV_IDLE_DAYS = 14
    try:
        runtime = get_runtime("local")
        built = {}
        for name in ("used", "idle", "recent", "deleted"):
            # Four requirement sets of their own, installed from local wheels in the platform's cache.
            requirements = local_wheel(data / "wheelhouse", f"envgc-{name}-{uuid.uuid4().hex[:8]}")
            spec = BuildSpec(version_id=f"envgc-{name}", source_dir=_source(data / "src"), requirements=requirements)
            built[name] = runtime.build(spec, log=lambda line: None).build
        for name in ("used", "deleted"):
            service = Service.objects.create(owner=user, name=f"envgc-{name}-{uuid.uuid4().hex[:6]}", title=name)
            ServiceVersion.objects.create(
                service=service,
                version="1.0.0",
                status=BuildStatus.READY,
                created_by=user,
                runtime="local",
                build_handle=built[name].to_json(),
            )
            if name == "deleted":
                Service.objects.filter(pk=service.pk).update(deleted_at=service.created_at)
        for name in ("used", "idle", "deleted"):
            _age(built[name].env_dir, days=30)
        _age(built["recent"].env_dir, days=1)

        assert environments_reap() == {"removed": 2}

        assert Path(built["used"].env_dir).is_dir()  # a current build points at it
        assert Path(built["recent"].env_dir).is_dir()  # unused, but not idle long enough
        assert not Path(built["idle"].env_dir).exists()
        assert not Path(built["deleted"].env_dir).exists()  # only a deleted service used it
        # The kept one still runs.
        _state, output = _run(runtime, built["used"])
        assert '"sum": 3' in output
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _run(runtime, build) -> tuple[object, str]:
    from runtimes import ExecutionSpec

    spec = ExecutionSpec(execution_id=f"t{uuid.uuid4().hex[:12]}", build=build, data={"values": [1, 2]})
    handle = runtime.start(spec)
    deadline = time.monotonic() + 120
    while (state := runtime.poll(handle)).running:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    output = runtime.read_output(handle, 0)[0]
    runtime.cleanup(handle)
    return state, output
