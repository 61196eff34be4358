"""In Chromium, at a phone's 390 px: the settings panel's subnet choice turns
the chat into an image or speech client. An image subnet's answer shows as
an image that loads; a speech subnet's as a player whose clip plays; the page
never scrolls sideways, with the settings open or with the media in it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.chat.browser_session import assert_fits_width, fast_passwords, screenshot, send, sign_in, verified_user  # noqa: F401 - fast_passwords is a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_passwords", "media"),
]


def answered(page):
    answer = page.locator("article.message-assistant").last
    expect(answer).not_to_have_class(re.compile("pending"))
    return answer


def test_draw_and_speak_from_the_settings_panel(page, live_server_url):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server_url, verified_user("artist@example.com"))
    page.goto(live_server_url + "/app/")
    page.get_by_role("button", name="Settings").click()
    subnet = page.get_by_label("Subnet")
    expect(subnet).to_have_value("chat")  # chat first, and the default
    subnet.select_option("images")
    expect(page.get_by_label("Images per answer")).to_be_visible()
    expect(page.get_by_label("Message")).to_have_attribute("placeholder", re.compile("image"))
    assert_fits_width(page)

    send(page, "a red fox in the snow")
    image = answered(page).locator("img.answer-image")
    expect(image).to_have_count(1)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    expect(answered(page).locator(".uid-badge")).to_be_visible()

    page.reload()  # the pick is kept with the other settings, and the image with the conversation
    page.get_by_role("button", name="Settings").click()
    expect(page.get_by_label("Subnet")).to_have_value("images")
    page.get_by_label("Subnet").select_option("speech")
    expect(page.get_by_label("Images per answer")).to_be_hidden()
    send(page, "the quick brown fox jumps")
    audio = answered(page).locator("audio[controls]")
    expect(audio).to_have_count(1)
    duration = audio.evaluate(
        """audio => new Promise((done, failed) => {
            if (audio.readyState >= 1) return done(audio.duration);
            audio.addEventListener("loadedmetadata", () => done(audio.duration));
            audio.addEventListener("error", () => failed(new Error("the clip did not load")));
            audio.load();
        })"""
    )
    assert duration > 0
    served = page.request.get(live_server_url + audio.get_attribute("src"))
    assert served.ok and served.headers["content-type"] == "audio/wav"

    expect(page.locator("article.message-assistant img.answer-image")).to_have_count(1)
    page.get_by_role("button", name="Settings").click()  # closed: the whole conversation in view
    assert_fits_width(page)
    screenshot(page, "chat-media-390")
