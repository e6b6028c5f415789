"""The /identity page in a real browser (Debian's chromium, headless, driven by
playwright): a teacher sends commands through forms built from the commands' JSON Schema,
and a second open page (never reloaded) shows the new prospect through ``/ws/events``."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.test_identity import PASSWORD, tag, user_client
from tests.support import ServeProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def teacher_login(server: ServeProcess, admin: httpx.Client) -> str:
    """A teacher's login (its e-mail; created by the admin, its sign-in already works)."""
    client, _, email = user_client(server, admin, "teacher")
    client.close()
    return email


def sign_in(context: BrowserContext, server: ServeProcess, username: str) -> Page:
    page = context.new_page()
    page.goto(f"{server.settings.api_url}/identity")
    page.fill("#login input[name=username]", username)
    page.fill("#login input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    expect(page.get_by_test_id("live")).to_have_attribute("data-state", "connected", timeout=15_000)
    expect(page.locator("#login")).to_be_hidden()
    return page


def test_a_prospect_made_in_one_page_appears_live_in_another(
    browser: Browser, server: ServeProcess, teacher_login: str
) -> None:
    started = time.monotonic()
    a_context, b_context = browser.new_context(), browser.new_context()
    try:
        a = sign_in(a_context, server, teacher_login)
        b = sign_in(b_context, server, teacher_login)
        t = tag()
        email = f"page.{t}@example.org"
        # page B narrows its list to what A is about to create: live updates keep the search
        b.get_by_test_id("search").fill(f"page.{t}")
        expect(b.get_by_test_id("total")).to_have_text("(0 of 0)")
        # a dropped socket comes back, resuming after the last notification it saw
        with b.expect_websocket() as again:
            b.evaluate("state.ws.close(4000, 'test: dropped')")
        assert "last_id=" in again.value.url, again.value.url
        expect(b.get_by_test_id("live")).to_have_attribute("data-state", "connected")

        # the form of CreateProspect, from its schema: required names and e-mail
        a.get_by_test_id("command").select_option("CreateProspect")
        expect(a.get_by_test_id("target-id")).to_be_hidden()
        for name in ("first_name", "last_name", "email"):
            expect(a.locator(f"#field-{name}")).to_have_attribute("aria-required", "true")
        expect(a.locator("#field-phone")).not_to_have_attribute("aria-required", "true")
        a.fill("#field-first_name", f"Grace{t[:4]}")
        a.fill("#field-last_name", f"<b>Hopper</b>{t[4:]}")
        a.fill("#field-email", email)
        a.get_by_test_id("submit").click()
        outcome = a.get_by_test_id("outcome")
        expect(outcome).to_have_attribute("data-outcome", "ok", timeout=20_000)
        expect(outcome).to_contain_text("201")
        new_id = outcome.get_attribute("data-id")
        assert new_id and new_id in outcome.inner_text()

        # page B, never reloaded, shows it: pushed over the WebSocket, the list reloaded
        row = b.locator(f"[data-testid=prospect-row][data-id='{new_id}']")
        expect(row).to_contain_text(email, timeout=20_000)
        expect(row).to_contain_text(f"<b>Hopper</b>{t[4:]}")  # text, not markup
        assert b.locator("#prospect-rows b").count() == 0
        row.click()  # a click puts the prospect's id in the id field
        expect(b.get_by_test_id("target-id")).to_have_value(new_id)

        # ConvertProspect: the role is a select of the Literal's values, and it takes an id
        a.get_by_test_id("command").select_option("ConvertProspect")
        expect(a.get_by_test_id("target-id")).to_be_visible()
        options = a.locator("#field-role option").all_inner_texts()
        assert {"student", "instructor"} <= set(options), options

        # a bad e-mail: the 422 problem's detail and its field, in page A
        a.get_by_test_id("command").select_option("CreateProspect")
        a.fill("#field-first_name", "Bad")
        a.fill("#field-last_name", "Email")
        a.fill("#field-email", "not-an-email")
        a.get_by_test_id("submit").click()
        expect(outcome).to_have_attribute("data-outcome", "problem", timeout=10_000)
        expect(outcome).to_have_attribute("data-status", "422")
        expect(outcome).to_contain_text("request failed validation")
        expect(outcome).to_contain_text("email:")

        # a token the socket refuses (4401): the error is shown, no reconnecting
        a.evaluate("state.token = 'not-a-token'; state.ws.close(4000)")
        expect(a.get_by_test_id("live")).to_have_attribute("data-state", "error", timeout=10_000)
        expect(a.get_by_test_id("live")).to_contain_text("not signed in")
    finally:
        a_context.close()
        b_context.close()
    assert time.monotonic() - started < 60
