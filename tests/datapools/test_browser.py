"""Data Pools in a real browser (Debian's Chromium): upload a JSON file, copy its reference."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from datapools import selectors
from datapools.models import DataFile, DataPool
from tests.conftest import login, make_user
from tests.datapools.conftest import stored_files

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def create_pool_in_page(page, live_server, name: str) -> None:
    page.goto(f"{live_server.url}/datapools/")
    page.fill("input[name=name]", name)
    page.click("button:has-text('Create data pool')")
    page.wait_for_selector(f"h1:has-text('{name}')")


def test_upload_json_and_copy_its_reference_into_the_clipboard(browser_page, live_server, tmp_path):
    user = make_user("pool-owner@example.com")
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    login(page, live_server, user)
    create_pool_in_page(page, live_server, "Sum example")

    data = tmp_path / "data.json"
    data.write_text(json.dumps({"values": [100, 50, 200, 70, 0.69]}))
    page.set_input_files("input[type=file][name=file]", str(data))
    page.click("button:has-text('Upload')")
    page.wait_for_selector("text=Uploaded “data.json”")

    datafile = DataFile.objects.get()
    shown = page.locator("[data-testid=reference]").first.inner_text()
    assert json.loads(shown) == datafile.reference

    page.click("[data-testid=copy-reference]")
    page.wait_for_selector("[data-testid=copy-reference]:has-text('Copied')")
    copied = page.evaluate("navigator.clipboard.readText()")
    ref = json.loads(copied)
    assert ref == datafile.reference
    # What was copied works as a dataRef for the same user.
    assert selectors.datafile_read_json(user=user, ref=ref, max_bytes=1024) == {"values": [100, 50, 200, 70, 0.69]}


def test_copy_button_works_without_the_clipboard_api(browser_page, live_server):
    """Plain http on another host is no secure context: app.js falls back to a selection copy."""
    user = make_user("fallback@example.com")
    page = browser_page
    login(page, live_server, user)
    create_pool_in_page(page, live_server, "Fallback")
    pool = DataPool.objects.get()
    from datapools import services

    datafile = services.datafile_create_from_json(user=user, pool=pool, name="params", payload={"round_off": False})
    page.goto(f"{live_server.url}/datapools/{pool.pk}/")
    # Take the Clipboard API away to force the fallback path, and record what execCommand copies.
    page.evaluate(
        """() => {
        Object.defineProperty(window, 'isSecureContext', {value: false});
        window.__copied = null;
        document.addEventListener('copy', () => { window.__copied = document.getSelection().toString(); });
    }"""
    )
    page.click("[data-testid=copy-reference]")
    page.wait_for_selector("[data-testid=copy-reference]:has-text('Copied')")
    assert json.loads(page.evaluate("window.__copied")) == datafile.reference


@override_settings(PLANQK_DATAPOOL_MAX_UPLOAD_MB=1)
def test_oversized_file_is_refused_in_the_page(browser_page, live_server, tmp_path, media_root):
    user = make_user("big@example.com")
    page = browser_page
    login(page, live_server, user)
    create_pool_in_page(page, live_server, "Limits")
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (1024 * 1024 + 10))
    page.set_input_files("input[type=file][name=file]", str(big))
    page.click("button:has-text('Upload')")
    page.wait_for_selector("text=larger than the upload limit of 1 MB")
    assert not DataFile.objects.exists()

    # Without the page's own check, the server refuses while the bytes stream in.
    page.evaluate("document.querySelector('form[data-max-bytes]').removeAttribute('data-max-bytes')")
    page.set_input_files("input[type=file][name=file]", str(big))
    page.click("button:has-text('Upload')")
    page.wait_for_selector("text=“big.json” is larger than the upload limit of 1 MB. Nothing was stored.")
    assert not DataFile.objects.exists()
    assert stored_files(media_root) == []


def test_share_in_the_page_and_the_other_user_sees_the_pool_on_a_phone(browser_page, live_server):
    owner = make_user("owner@example.com")
    reader = make_user("reader@example.com")
    page = browser_page
    login(page, live_server, owner)
    create_pool_in_page(page, live_server, "Shared inputs")
    pool = DataPool.objects.get()
    from datapools import services

    services.datafile_create_from_json(user=owner, pool=pool, name="data", payload={"values": [1, 2]})
    page.click("text=Sharing")
    page.fill("input[name=email]", reader.email)
    page.select_option("select[name=permission]", "READ")
    page.click("button:has-text('Share')")
    page.wait_for_selector("[data-testid=share-row]:has-text('reader@example.com')")

    page.click("[data-testid=logout]")
    login(page, live_server, reader)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/datapools/?show=shared")
    page.click("text=Shared inputs")
    page.wait_for_selector("[data-testid=reference]")
    assert page.locator("[data-testid=access]").inner_text() == "read only"
    assert page.locator("[data-testid=upload]").count() == 0
    # The long reference wraps instead of pushing the page sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
