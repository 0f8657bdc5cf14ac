"""Create Service and Create Job with the keyboard only (Tab, Shift+Tab, Enter, Space and typing):
the skip link comes first, every stop on the way shows a visible focus ring, the form is submitted
and the result page is reached."""

from __future__ import annotations

import pytest

from jobs.models import Job
from tests.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FOCUS = """() => {
  const el = document.activeElement;
  const box = el.getBoundingClientRect();
  const style = getComputedStyle(el);
  return {
    what: `${el.tagName.toLowerCase()}#${el.id || ""}[${el.name || el.textContent.trim().slice(0, 30)}]`,
    width: box.width, height: box.height, top: box.top, bottom: box.bottom, inner: window.innerHeight,
    outline: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth) || 0,
    outlineColor: style.outlineColor, body: el === document.body,
  };
}"""


def _focus_is_visible(page) -> dict:
    """The focused element: on screen, with the platform's outline of at least 2 px (app.css: 3 px)."""
    focus = page.evaluate(FOCUS)
    assert not focus["body"], "focus was lost to the page"
    assert focus["width"] > 0, focus
    assert focus["height"] > 0, focus
    assert focus["bottom"] > 0, focus
    assert focus["top"] < focus["inner"], focus
    assert focus["outline"] not in ("none", "hidden"), focus
    assert focus["outlineWidth"] >= 2, focus
    # app.css's ring (dark blue on a white halo: at least 3:1 on every background), not the browser's.
    assert focus["outlineColor"] == "rgb(13, 71, 161)", focus
    return focus


def _tab_to(page, selector: str, *, back: bool = False, limit: int = 80) -> None:
    """Tab (or Shift+Tab) until ``selector`` has the focus, checking the focus ring at every stop."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        seen.append(_focus_is_visible(page)["what"])
        if page.evaluate("(selector) => document.activeElement.matches(selector)", selector):
            return
    raise AssertionError(f"{selector} never got the focus; stops: {seen}")


def _skip_link_first(page) -> None:
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.dataset.testid") == "skip-link"
    _focus_is_visible(page)
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    _focus_is_visible(page)
    assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)")


def _choose_file_with_the_keyboard(page, path) -> None:
    """Space (or Enter) on the focused file input opens the chooser. Under a loaded CI machine
    Chromium once dropped the first activation (no filechooser event in 15 s, the focus on the
    input), so the keys are tried a few times; the input must stay keyboard-operable."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    for key in ("Space", "Enter", "Space", "Enter"):
        assert page.evaluate("() => document.activeElement.id") == "id_file"
        try:
            with page.expect_file_chooser(timeout=8000) as chooser:
                page.keyboard.press(key)
        except PlaywrightTimeoutError:
            continue
        chooser.value.set_files(str(path))
        return
    raise AssertionError("the focused file input opened no file chooser from the keyboard")


@pytest.fixture
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_create_service_with_the_keyboard_only(browser_page, live_server, private_media, tmp_path):
    from planqk_samples import sample_zip
    from services.models import Service
    from tests.services.conftest import make_provider

    archive = tmp_path / "user_code.zip"
    archive.write_bytes(sample_zip("sum"))
    provider = make_provider()
    page = browser_page
    login(page, live_server, provider)
    page.goto(f"{live_server.url}/services/create/")
    _skip_link_first(page)

    _tab_to(page, "#id_name")
    page.keyboard.type("keyboard-sum")
    _tab_to(page, "#id_file")
    _choose_file_with_the_keyboard(page, archive)
    _tab_to(page, "#id_title", back=True)
    page.keyboard.type("Keyboard Sum")
    _tab_to(page, "[data-testid=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    service = Service.objects.get(owner=provider)
    assert page.url.split("#")[0] == f"{live_server.url}/services/{service.pk}/"
    assert (service.name, service.title) == ("keyboard-sum", "Keyboard Sum")
    assert service.versions.count() == 1


def test_create_job_with_the_keyboard_only(browser_page, live_server, user):
    from planqk_samples import sample_files
    from services.models import BuildStatus, Service, ServiceVersion

    service = Service.objects.create(owner=user, name="bell", title="Bell")
    ServiceVersion.objects.create(
        service=service,
        version="1.0.0",
        status=BuildStatus.READY,  # not built: the test ends on the job page
        api_spec=sample_files("qiskit_bell")["openapi-spec.yml"].decode(),
    )
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/jobs/new/?service={service.pk}")
    page.wait_for_load_state()
    _skip_link_first(page)

    _tab_to(page, "[name='sf:params.shots']")
    page.keyboard.press("Control+A")
    page.keyboard.type("77")
    _tab_to(page, "summary")  # Advanced settings
    page.keyboard.press("Enter")
    _tab_to(page, "#id_save_result")
    page.keyboard.press("Space")
    _tab_to(page, "[name='sf:params.shots']", back=True)  # back up to check the value, and on again
    assert page.input_value("[name='sf:params.shots']") == "77"
    _tab_to(page, "[data-testid=run-job]")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    job = Job.objects.get()
    assert page.url.split("#")[0] == f"{live_server.url}/jobs/{job.pk}/"
    assert job.params == {"shots": 77, "backend": "aer_simulator"}
    assert job.save_result_to_pool
