"""Images and speech in the browser chat: the subnet picked in the settings
panel answers the message with media, through the same gateway call as chat
(the user's chat key, credits, moderation, the request log), kept with the
conversation and served to its owner only. Real localnet miners of each kind."""

from __future__ import annotations

import io
import re
import wave

import pytest
from PIL import Image

from chat.models import ChatMedia, Conversation, Message
from chat.services import chat_account
from endpoint.core.db import run_db
from endpoint.core.subnets import do_add_subnet, do_edit_subnet
from keys.models import ApiKey
from logs.models import MinerResponse, Request

from .events import events, final_html

pytestmark = pytest.mark.postgres

MEDIA_URL = re.compile(r'(?:src)="(/app/media/(\d+)/)"')


def _credits(user) -> int:
    return ApiKey.objects.get(pk=chat_account(user).key_id).credits


def _media_urls(html: str) -> list[str]:
    return [url for url, _ in MEDIA_URL.findall(html)]


async def test_an_image_answer_is_kept_and_shown_to_its_owner_only(browser_for, alice, bob, media, settings):
    me = await browser_for(alice)
    got = events(await me.send("a red fox", subnet="images", strategy="uids", uids="1"))
    html = final_html(got)
    (url,) = _media_urls(html)
    assert "<img" in html and "uid 1" in html

    image = await me.client.get(url)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).format == "PNG"
    assert image.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert image.headers["cache-control"].startswith("private")

    other = await browser_for(bob)
    assert (await other.client.get(url)).status_code == 404
    bob.is_staff = bob.is_superuser = True
    await run_db(bob.save)
    assert (await other.client.get(url)).status_code == 404  # staff too: the conversation is alice's
    signed_out = await me.client.__class__(transport=me.client._transport, base_url="http://testserver").get(url)
    assert signed_out.status_code == 302

    answer = await run_db(Message.objects.get, role=Message.ASSISTANT)
    assert answer.media_kind == "image" and re.fullmatch(r"\[image/png, \d+ KiB\]", answer.content)
    kept = await run_db(ChatMedia.objects.get)
    assert kept.sha256 and kept.size == len(image.content)
    log = await run_db(Request.objects.get)
    assert (log.route, log.status, log.credits_charged) == ("chat-ui", 200, 5)  # the image subnet's price
    assert log.messages == [{"role": "user", "content": "a red fox"}]
    logged = await run_db(lambda: MinerResponse.objects.get(request=log, is_success=True).response)
    assert logged.startswith("image/png") and "sha256" in logged  # described, no bytes
    assert await run_db(_credits, alice) == settings.CHAT_SIGNUP_CREDITS - 5

    page = await me.page(next(e for e in got if e["event"] == "conversation")["url"])
    assert url in page.text and "[image/png" in page.text  # a reload shows the image again


async def test_several_images_are_charged_per_image(browser_for, alice, media, settings):
    me = await browser_for(alice)
    html = final_html(events(await me.send("two cats", subnet="images", images="2")))
    assert len(_media_urls(html)) == 2
    assert await run_db(_credits, alice) == settings.CHAT_SIGNUP_CREDITS - 2 * 5


async def test_a_speech_answer_is_a_wav_the_page_plays(browser_for, alice, media, settings):
    me = await browser_for(alice)
    html = final_html(events(await me.send("the quick brown fox", subnet="speech")))
    assert "<audio controls" in html
    (url,) = _media_urls(html)
    clip = await me.client.get(url)
    assert clip.status_code == 200 and clip.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(clip.content)) as audio:
        assert audio.getnframes() > 0
    kept = await run_db(ChatMedia.objects.get)
    assert kept.content_type == "audio/wav"
    answer = await run_db(Message.objects.get, role=Message.ASSISTANT)
    assert answer.content.startswith("[audio/wav, ") and answer.media_kind == "speech"
    assert await run_db(_credits, alice) == settings.CHAT_SIGNUP_CREDITS - 3
    sent = media["speech"].miner(answer.uid).seen[-1].body
    assert sent["input"] == "the quick brown fox" and sent["voice"]


async def test_a_subnet_not_offered_is_a_400_that_keeps_and_charges_nothing(browser_for, alice, media, settings):
    me = await browser_for(alice)
    for subnet in ("nowhere", "x" * 80, 19, ["images"]):
        refused = await me.send("a red fox", subnet=subnet)
        assert refused.status_code == 400, refused.text
        assert "subnet" in refused.json()["error"]
    await run_db(do_edit_subnet, "images", {"enabled": "false"})
    refused = await me.send("a red fox", subnet="images")
    assert refused.status_code == 400 and "subnet" in refused.json()["error"]
    assert (await me.send("x", subnet="images", images="5")).status_code == 400
    assert not await Conversation.objects.aexists() and not await Request.objects.aexists()
    assert await run_db(_credits, alice) == settings.CHAT_SIGNUP_CREDITS


async def test_the_panel_lists_the_chat_subnet_first_then_images_and_speech(browser_for, alice, media):
    page = (await (await browser_for(alice)).page("/app/")).text
    slugs = re.findall(r'<option value="([^"]+)" data-kind="([^"]+)"', page)
    assert slugs == [("chat", "chat"), ("images", "image"), ("speech", "speech")]


async def test_only_chat_hides_the_subnet_choice(browser_for, alice, network):
    page = (await (await browser_for(alice)).page("/app/")).text
    assert '<div class="row subnet-pick" hidden>' in page


async def test_every_miner_failing_keeps_the_error_charges_nothing_and_retry_works(browser_for, alice, media, settings):
    media["images"].set_behaviour([0, 1], mode="error")
    me = await browser_for(alice)
    failed = await me.send("a red fox", subnet="images")
    assert failed.status_code == 502
    body = failed.json()
    assert "Every miner asked failed" in body["error"] and "answer-error" in body["html"]
    assert await run_db(_credits, alice) == settings.CHAT_SIGNUP_CREDITS
    assert not await ChatMedia.objects.aexists()

    media["images"].reset()
    prompt = await run_db(Message.objects.get, role=Message.USER)
    retried = await me.post_json(
        f"/app/c/{prompt.conversation_id}/m/{prompt.pk}/regenerate/", {"settings": {"subnet": "images"}}
    )
    assert len(_media_urls(final_html(events(retried)))) == 1
    assert await run_db(lambda: list(Message.objects.values_list("role", "error"))) == [
        ("user", ""),
        ("assistant", ""),
    ]
    assert await run_db(_credits, alice) == settings.CHAT_SIGNUP_CREDITS - 5


async def test_out_of_credits_and_an_unsynced_subnet_are_errors_in_the_conversation(browser_for, alice, media):
    me = await browser_for(alice)
    await ApiKey.objects.filter(pk=(await run_db(chat_account, alice)).key_id).aupdate(credits=4)
    poor = await me.send("a red fox", subnet="images")
    assert poor.status_code == 402 and "out of credits" in poor.json()["error"]

    # Registered, never synced: no neurons known for its netuid.
    fields = {"name": "Fresh", "kind": "speech", "netuid": "23", "network": "local", "price": "1"}
    await run_db(do_add_subnet, "fresh", fields)
    unsynced = await me.send("hello", subnet="fresh")
    assert unsynced.status_code == 503 and "not been synced" in unsynced.json()["error"]
    assert "answer-error" in unsynced.json()["html"]
    assert not await ChatMedia.objects.aexists()


async def test_a_flagged_prompt_is_refused_before_any_miner_draws(browser_for, alice, media, fake_openai, settings):
    me = await browser_for(alice)
    refused = await me.send("draw FLAGME", subnet="images")
    assert refused.status_code == 400 and "answer-error" in refused.json()["html"]
    assert not any(m.seen for m in media["images"].miners)
    assert await run_db(_credits, alice) == settings.CHAT_SIGNUP_CREDITS


async def test_speech_of_too_long_a_text_is_refused_before_it_is_kept(browser_for, alice, media):
    me = await browser_for(alice)
    refused = await me.send("word " * 1000, subnet="speech")
    assert refused.status_code == 400 and "4096" in refused.json()["error"]
    assert not await Conversation.objects.aexists()


async def test_deleting_the_conversation_deletes_its_media(browser_for, alice, media):
    me = await browser_for(alice)
    got = events(await me.send("a red fox", subnet="images"))
    conversation = next(e for e in got if e["event"] == "conversation")
    (url,) = _media_urls(final_html(got))
    await me.page(conversation["url"])
    deleted = await me.post_form(f"/app/c/{conversation['id']}/delete/", {})
    assert deleted.status_code == 302
    assert not await ChatMedia.objects.aexists()
    assert (await me.client.get(url)).status_code == 404


async def test_chat_answers_after_media_still_stream(browser_for, alice, media, network):
    me = await browser_for(alice)
    got = events(await me.send("a red fox", subnet="images"))
    conversation_id = next(e for e in got if e["event"] == "conversation")["id"]
    chat = events(await me.send("What did you draw?", conversation=conversation_id, strategy="uids", uids="2"))
    assert any(e["event"] == "delta" for e in chat)
    sent = network.miner(2).seen[-1].body["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["content"].startswith("[image/png")
