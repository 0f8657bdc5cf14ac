"""What hosts report of their warm runners and how a version's warm state is read back (issue 17, item 5).

A real local runtime with warm runners reports its pool (hosts.warm); the report goes on the host's
row with its heartbeat (hosts.services.host_beat, and for real from a worker's heartbeat thread), and
hosts.selectors.version_warm reads one version's runners across the live hosts of this queue family.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import WorkerHost
from hosts.selectors import WarmState, version_warm
from hosts.services import host_beat
from hosts.warm import host_warm_report, pool_report
from jobs.runtime_factory import get_runtime, local_config
from runtimes.base import ExecutionSpec
from runtimes.local import LocalRuntime
from runtimes.local.handles import WarmConfig
from tests.jobs.conftest import wait_for


def _pool(version_id: str, *, enabled: bool = True, idle_seconds: int = 600, **shape: object) -> dict:
    return {
        "enabled": enabled,
        "min_runners": 1,
        "max_runners": 2,
        "idle_seconds": idle_seconds,
        "memory_mb": 1024,
        "shapes": [{"version_id": version_id, "ready": 0, "starting": 0, "target": 0, "memory_kb": 0, **shape}],
    }


def _beat(name: str, warm: dict | None, runtimes: list[str] | None = None, **kwargs: object) -> WorkerHost:
    return host_beat(name=name, runtimes=runtimes or ["local"], warm=warm, **kwargs)


@pytest.fixture
def own_hosts(db, settings):
    """Only this test's hosts count: a queue family of its own (the session worker of a full run
    is a live host too, of the run's family, and beats again every few seconds). Only the setting:
    nothing here enqueues, and Celery's default queue stays the run's."""
    settings.CELERY_TASK_DEFAULT_QUEUE = f"warm-state-{uuid.uuid4().hex[:8]}"


# --- the report of a real pool ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_real_pool_reports_its_ready_runner_and_memory_and_the_version_reads_warm(user, make_version, own_hosts):
    version = make_version(user, "sum")
    runtime = LocalRuntime(dataclasses.replace(local_config(), warm=WarmConfig(enabled=True, idle_seconds=300)))
    build = runtime.build_handle(version.build_handle)
    spec = ExecutionSpec(execution_id=f"job-{uuid.uuid4().hex[:12]}", build=build, memory_mb=256, timeout_seconds=60)
    try:
        assert runtime.prewarm(spec, wait_seconds=60) >= 1
        report = host_warm_report_of(runtime)
        pool = report["local"]
        assert pool["enabled"] is True
        assert pool["idle_seconds"] == 300
        assert pool["memory_mb"] == 1024
        (shape,) = [s for s in pool["shapes"] if s["version_id"] == str(version.pk)]
        assert shape["ready"] >= 1
        assert shape["memory_kb"] > 1024  # an interpreter that imported the program holds megabytes
        assert shape["last_call"] == pytest.approx(time.time(), abs=120)

        _beat("warm-a", report)
        warm = version_warm(version_id=version.pk, runtime="local")
        assert warm.state == WarmState.WARM
        (host,) = warm.hosts
        assert host.name == "warm-a"
        assert host.enabled
        assert host.ready == shape["ready"]
        assert warm.memory_mb == pytest.approx(shape["memory_kb"] / 1024)
        assert warm.last_call is not None
        # Another version has nothing warm on the same host.
        assert version_warm(version_id=uuid.uuid4(), runtime="local").state == WarmState.COLD
    finally:
        runtime.warm.stop_all()
    # Stopped: the next report says nothing is ready; the call is recent, so it is cold, not "not called".
    _beat("warm-a", host_warm_report_of(runtime))
    warm = version_warm(version_id=version.pk, runtime="local")
    assert warm.state == WarmState.COLD
    assert warm.ready == 0
    assert warm.last_call is not None


def host_warm_report_of(runtime: LocalRuntime) -> dict:
    """``host_warm_report`` of this runtime object (the heartbeat makes its own from the settings)."""
    return {"local": pool_report(runtime.warm)}


@pytest.mark.django_db
def test_the_settings_runtime_reports_off_in_tests_and_a_runtime_without_a_pool_is_absent(settings):
    settings.PLANQK_WARM = "off"
    report = host_warm_report(["local", "docker", "external"])
    assert report["local"]["enabled"] is False
    # The Docker runtime's warm containers are reported the same way (read from its files, no engine asked).
    assert report["docker"]["enabled"] is False
    assert "external" not in report  # no warm pool there: its executions all start cold
    settings.PLANQK_WARM = "on"
    report = host_warm_report(["local", "docker"])
    assert report["local"]["enabled"] is True
    assert report["docker"]["enabled"] is True
    assert get_runtime("local").warm.config.enabled


# --- reading it back ----------------------------------------------------------------------------


def test_the_states_of_a_version_across_live_hosts(own_hosts, settings):
    v = str(uuid.uuid4())
    assert version_warm(version_id=v, runtime="local").state == WarmState.NO_HOST

    # A live host from before hosts reported warm runners (no report): the runtime has no pool there.
    _beat("old", None)
    assert version_warm(version_id=v, runtime="local").state == WarmState.NO_POOL
    # A Docker-only host does not count for a local version, nor its warm report.
    _beat("dock", {"docker": _pool(v, ready=3)}, runtimes=["docker"])
    assert version_warm(version_id=v, runtime="local").state == WarmState.NO_POOL
    assert version_warm(version_id=v, runtime="docker").state == WarmState.WARM

    _beat("off", {"local": _pool(v, enabled=False)})
    off = version_warm(version_id=v, runtime="local")
    assert off.state == WarmState.OFF
    assert [h.name for h in off.hosts_off] == ["off"]

    _beat("on", {"local": _pool(v, starting=1, last_call=time.time())})
    starting = version_warm(version_id=v, runtime="local")
    assert starting.state == WarmState.STARTING
    assert starting.starting == 1
    assert [h.name for h in starting.hosts_on] == ["on"]
    assert [h.name for h in starting.hosts_off] == ["off"]

    # Two pool shapes of the version (its limits changed) on one host add up.
    two = _pool(v, ready=1, memory_kb=2048, last_call=time.time())
    two["shapes"].append({"version_id": v, "ready": 1, "starting": 1, "memory_kb": 1024, "last_call": 1.0})
    two["shapes"].append({"version_id": str(uuid.uuid4()), "ready": 5, "memory_kb": 99999})
    _beat("on", {"local": two})
    warm = version_warm(version_id=v, runtime="local")
    assert warm.state == WarmState.WARM
    (on,) = warm.hosts_on
    assert (on.ready, on.starting, on.memory_kb) == (2, 1, 3072)
    assert warm.memory_mb == 3.0
    assert warm.idle_minutes == 10

    # A host that went silent, or one of another queue family, is not counted.
    WorkerHost.objects.filter(name="on").update(last_seen=timezone.now() - timedelta(hours=1))
    assert version_warm(version_id=v, runtime="local").state == WarmState.OFF
    _beat("other-family", {"local": _pool(v, ready=4)}, family=f"{settings.CELERY_TASK_DEFAULT_QUEUE}-other")
    assert version_warm(version_id=v, runtime="local").state == WarmState.OFF


def test_a_call_older_than_the_idle_time_is_not_shown_and_the_version_is_cold(own_hosts):
    v = str(uuid.uuid4())
    _beat("h", {"local": _pool(v, idle_seconds=60, last_call=time.time() - 61)})
    warm = version_warm(version_id=v, runtime="local")
    assert warm.state == WarmState.COLD
    assert warm.last_call is None
    assert warm.idle_minutes == 1
    _beat("h", {"local": _pool(v, idle_seconds=60, last_call=time.time() - 5)})
    assert version_warm(version_id=v, runtime="local").last_call is not None


@pytest.mark.parametrize(
    "warm",
    [
        "not a dict",
        ["local"],
        {"local": "on"},
        {"local": {"enabled": "yes", "shapes": "many"}},
        {"local": {"enabled": True, "idle_seconds": "x", "shapes": [None, 3, {"version_id": None}]}},
        {
            "local": {
                "enabled": True,
                "idle_seconds": -1e20,
                "memory_mb": -5,
                "shapes": [
                    {"version_id": "V", "ready": "7", "starting": -2, "memory_kb": [1], "last_call": "now"},
                    {"version_id": "V", "ready": True, "starting": 1e300, "last_call": 1e300},
                ],
            }
        },
    ],
)
def test_a_stored_report_of_the_wrong_shape_reads_as_nothing_rather_than_failing(own_hosts, warm):
    WorkerHost.objects.create(
        name="odd", started_at=timezone.now(), last_seen=timezone.now(), runtimes=["local"], warm=warm
    )
    state = version_warm(version_id="V", runtime="local")
    assert state.state in set(WarmState)
    assert state.ready == 0
    assert all(h.memory_kb >= 0 and h.idle_seconds >= 0 for h in state.hosts)


# --- a real worker's heartbeat ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_heartbeat_writes_its_hosts_warm_report(start_host):
    start_host("warm-on", env={"PLANQK_WARM": "on", "PLANQK_WARM_IDLE_SECONDS": "120"})
    start_host("warm-off", env={"PLANQK_WARM": "off"})
    on = wait_for(lambda: (h := WorkerHost.objects.filter(name="warm-on").first()) and h.warm and h, timeout=60)
    off = wait_for(lambda: (h := WorkerHost.objects.filter(name="warm-off").first()) and h.warm and h, timeout=60)
    assert on.warm["local"]["enabled"] is True
    assert on.warm["local"]["idle_seconds"] == 120
    assert on.warm["local"]["shapes"] == []
    assert off.warm["local"]["enabled"] is False
