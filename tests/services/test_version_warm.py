"""The provider sees on the version and service pages whether a version is warm (issue 17, item 5).

In a real browser: per live host its ready and starting runners and their memory (a real pool of
the local runtime, prewarmed, reported as a worker's heartbeat reports it), "cold: not called in
the last N minutes", "warm execution is off", no host; on a phone and with the keyboard.
"""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest

from hosts.services import host_beat
from hosts.warm import pool_report
from jobs.runtime_factory import local_config
from runtimes.base import ExecutionSpec
from runtimes.local import LocalRuntime
from runtimes.local.handles import WarmConfig
from tests.conftest import login
from tests.jobs.conftest import make_version  # noqa: F401 - the fixture
from tests.jobs.test_keyboard import _tab_to

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def family(settings) -> str:
    """A queue family of this test's own, so only its hosts are live hosts of the pages' platform
    (a session worker of a full run beats for the run's family every few seconds)."""
    settings.CELERY_TASK_DEFAULT_QUEUE = f"warm-page-{uuid.uuid4().hex[:8]}"
    return settings.CELERY_TASK_DEFAULT_QUEUE


def _pool(*, enabled: bool = True, shapes: list | None = None) -> dict:
    return {
        "local": {
            "enabled": enabled,
            "min_runners": 1,
            "max_runners": 2,
            "idle_seconds": 600,
            "memory_mb": 1024,
            "shapes": shapes or [],
        }
    }


def _version_page(page, live_server, version) -> str:
    page.goto(f"{live_server.url}/services/{version.service_id}/versions/{version.pk}/")
    return page.locator("[data-testid=warm]").get_attribute("data-warm-state")


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_warm_version_shows_each_hosts_runners_and_memory_and_the_service_page_links_to_it(
    browser_page,
    live_server,
    user,
    make_version,  # noqa: F811 - the fixture imported above
    family,
):
    version = make_version(user, "sum")
    # A budget of its own: the run's data folder may hold other tests' idle runners, and a start
    # refused for the shared budget is not what this page test is about.
    runtime = LocalRuntime(dataclasses.replace(local_config(), warm=WarmConfig(enabled=True, memory_mb=16384)))
    spec = ExecutionSpec(
        execution_id=f"job-{uuid.uuid4().hex[:12]}", build=runtime.build_handle(version.build_handle), memory_mb=256
    )
    page = browser_page
    try:
        assert runtime.prewarm(spec, wait_seconds=60) >= 1
        report = {"local": pool_report(runtime.warm)}
        (shape,) = [s for s in report["local"]["shapes"] if s["version_id"] == str(version.pk)]
        host_beat(name="warm-a", runtimes=["local"], warm=report)
        host_beat(name="warm-b", runtimes=["local"], warm=_pool(enabled=False))
        login(page, live_server, user)

        assert _version_page(page, live_server, version) == "warm"
        summary = page.locator("[data-testid=warm-summary]").inner_text()
        assert f"Warm: {shape['ready']} runner" in summary
        assert "on 1 host," in summary
        assert "never reused" in summary
        row = page.locator("[data-testid=warm-host][data-host=warm-a]")
        assert row.locator("[data-testid=warm-ready]").inner_text() == str(shape["ready"])
        assert row.locator("[data-testid=warm-starting]").inner_text() == str(shape["starting"])
        assert row.locator("[data-testid=warm-memory]").inner_text().startswith(f"{shape['memory_kb'] / 1024:.0f} MB")
        assert page.locator("[data-testid=warm-host][data-host=warm-b]").count() == 0
        assert "off on warm-b" in page.locator("[data-testid=warm-off-hosts]").inner_text()

        # The service page says it in one line; the keyboard reaches its link to the version's part.
        page.goto(f"{live_server.url}/services/{version.service_id}/")
        line = page.locator("dd[data-testid=warm]")
        assert line.get_attribute("data-warm-state") == "warm"
        assert line.inner_text().startswith(f"warm: {shape['ready']} ready on 1 host")
        _tab_to(page, "dd[data-testid=warm] a")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/versions/{version.pk}/#warm-heading")
        assert page.locator("#warm-heading").is_visible()
        top = page.evaluate("document.getElementById('warm-heading').getBoundingClientRect().top")
        assert 0 <= top < page.viewport_size["height"]

        # On a phone: nothing is wider than the screen; each host's row stacks with its labels.
        page.set_viewport_size({"width": 390, "height": 844})
        _version_page(page, live_server, version)
        assert _fits_the_screen(page)
        memory = page.locator("[data-testid=warm-host][data-host=warm-a] [data-testid=warm-memory]")
        box = memory.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 391
        label = page.evaluate("(el) => getComputedStyle(el, '::before').content", memory.element_handle())
        assert label == '"Memory"'
        page.goto(f"{live_server.url}/services/{version.service_id}/")
        assert page.locator("dd[data-testid=warm]").is_visible()
        assert _fits_the_screen(page)
    finally:
        runtime.warm.stop_all()


def test_cold_off_and_no_host_are_each_said_plainly(
    browser_page,
    live_server,
    user,
    make_version,  # noqa: F811 - the fixture imported above
    family,
):
    version = make_version(user, "sum")
    page = browser_page
    login(page, live_server, user)

    assert _version_page(page, live_server, version) == "no-host"
    assert "no worker host that runs the local runtime is running" in page.locator("[data-testid=warm]").inner_text()

    # On, but this version was never called: cold, with the host's idle time in minutes.
    host_beat(name="warm-a", runtimes=["local"], warm=_pool())
    assert _version_page(page, live_server, version) == "cold"
    text = page.locator("[data-testid=warm-summary]").inner_text()
    assert "Cold: not called in the last 10 minutes." in text
    assert page.locator("[data-testid=warm-hosts]").count() == 0
    page.goto(f"{live_server.url}/services/{version.service_id}/")
    assert page.locator("dd[data-testid=warm]").inner_text().startswith("cold: not called in the last 10 minutes")

    # Runners starting for it: said so, and the host's row is there.
    host_beat(
        name="warm-a",
        runtimes=["local"],
        warm=_pool(shapes=[{"version_id": str(version.pk), "ready": 0, "starting": 2, "last_call": time.time()}]),
    )
    assert _version_page(page, live_server, version) == "starting"
    assert "2 runners starting" in page.locator("[data-testid=warm-summary]").inner_text()
    assert page.locator("[data-testid=warm-host][data-host=warm-a] [data-testid=warm-starting]").inner_text() == "2"

    # Turned off on the only host.
    host_beat(name="warm-a", runtimes=["local"], warm=_pool(enabled=False))
    assert _version_page(page, live_server, version) == "off"
    assert "Warm execution is off (PLANQK_WARM=off): every execution starts cold." in (
        page.locator("[data-testid=warm-summary]").inner_text()
    )
    page.goto(f"{live_server.url}/services/{version.service_id}/")
    assert page.locator("dd[data-testid=warm]").inner_text().startswith("off: warm execution is turned off")

    # A host whose workers report no pool (from before warm runners): cold, no runners there.
    host_beat(name="warm-a", runtimes=["local"], warm={})
    assert _version_page(page, live_server, version) == "no-pool"
    assert "has no warm runners yet" in page.locator("[data-testid=warm-summary]").inner_text()
    page.set_viewport_size({"width": 390, "height": 844})
    assert _fits_the_screen(page)


def test_a_version_not_built_shows_no_warm_part(
    browser_page,
    live_server,
    user,
    make_version,  # noqa: F811 - the fixture imported above
    family,
):
    from services.models import BuildStatus

    version = make_version(user, "sum")
    version.status = BuildStatus.FAILED
    version.save(update_fields=["status"])
    host_beat(name="warm-a", runtimes=["local"], warm=_pool())
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/services/{version.service_id}/versions/{version.pk}/")
    page.wait_for_selector("h1")
    assert page.locator("[data-testid=warm]").count() == 0
    page.goto(f"{live_server.url}/services/{version.service_id}/")
    page.wait_for_selector("h1")
    assert page.locator("[data-testid=warm]").count() == 0
