"""The /timeline page in a real browser (Debian's chromium, headless, driven by
playwright): a follower's open page shows a chirp the moment it is posted, without a
reload (issue 10, section 3)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.test_social import User
from tests.support import ServeProcess

pytestmark = pytest.mark.e2e


def sign_in(browser: Browser, server: ServeProcess, user: User) -> Any:
    page = browser.new_page()
    page.goto(f"{server.settings.api_url}/timeline")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "correct horse battery")
    page.click("#login button[type=submit]")
    expect(page.locator("#live")).to_be_visible(timeout=15_000)  # subscribed
    return page


def test_a_chirp_appears_on_a_followers_open_page(browser: Browser, server: ServeProcess) -> None:
    alice, bob = User(server, "alice"), User(server, "bob")
    assert bob.follow(alice).status_code == 201
    older = alice.chirp("before the page opened")
    follower = sign_in(browser, server, bob)
    expect(follower.locator(f"#feed li[data-id='{older}']")).to_be_visible()

    author = sign_in(browser, server, alice)
    author.fill("#text", "hello from the browser <b>not bold</b>")
    author.click("#compose button[type=submit]")

    fresh = follower.locator("#feed li.new").first
    expect(fresh).to_contain_text("hello from the browser <b>not bold</b>", timeout=10_000)
    expect(fresh).to_contain_text("Alice Example")
    # newest first, and shown as text: the markup stayed text
    expect(follower.locator("#feed li").first).to_have_class("new")
    assert follower.locator("#feed b").count() == 0

    follower.reload()  # the live item is also what the feed shows after a reload
    expect(follower.locator("#feed li").first).to_contain_text("hello from the browser")
