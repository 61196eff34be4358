"""Images, speech, transcription and embeddings through the gateway, as the
official openai SDK calls them, answered by localnet miners of each kind on
subnets an operator registered: same keys, credits, logs and strategies as
chat."""

from __future__ import annotations

import base64
import io
import wave
from datetime import timedelta

import httpx
import openai
import pytest
from django.utils import timezone
from PIL import Image

from endpoint.core.subnets import do_add_subnet
from endpoint.network.localnet import LocalSubnet
from keys.models import ApiKey
from keys.services import do_create_key
from logs.models import MediaFile, MinerResponse, Request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def buyer(media):
    return do_create_key(name="media", credits=100)


def sdk(live_server_url, raw_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_server_url + "/v1", api_key=raw_key, max_retries=0, timeout=20)


def credits(key) -> int:
    return ApiKey.objects.get(pk=key.key.pk).credits


def only_log(route: str) -> Request:
    (row,) = Request.objects.filter(route=route)
    return row


def speak(live_server_url, key, text: str, model: str = "speech/auto") -> bytes:
    api = sdk(live_server_url, key.raw)
    with api.audio.speech.with_streaming_response.create(
        model=model, voice="alloy", input=text, response_format="wav"
    ) as response:
        assert response.headers["content-type"].startswith("audio/")
        return response.read()


# --- embeddings -------------------------------------------------------------------------


def test_embeddings_as_the_sdk_asks_them_base64_by_default(live_server_url, buyer):
    api = sdk(live_server_url, buyer.raw)
    packed = api.embeddings.create(model="embed/auto", input=["a cat", "a dog"])  # the SDK asks base64
    plain = api.embeddings.create(model="embed/uid:1", input=["a cat", "a dog"], encoding_format="float")
    assert [d.index for d in packed.data] == [0, 1]
    for a, b in zip(packed.data, plain.data, strict=True):
        assert len(a.embedding) == len(b.embedding) == 64
        assert all(abs(x - y) < 1e-6 for x, y in zip(a.embedding, b.embedding, strict=True))  # float32 on the wire
    assert plain.data[0].embedding != plain.data[1].embedding
    assert packed.usage.prompt_tokens > 0 and packed.usage.total_tokens == packed.usage.prompt_tokens
    assert packed.model == "embed/auto"
    assert credits(buyer) == 100 - 2 * 1  # one answer each, at the subnet's price


def test_embeddings_dimensions_reach_the_miner_and_are_checked(live_server_url, buyer, media):
    api = sdk(live_server_url, buyer.raw)
    answer = api.embeddings.create(model="sn22/uid:0", input="hello", dimensions=8, encoding_format="float")
    assert len(answer.data[0].embedding) == 8
    (seen,) = media["embed"].miners[0].seen
    assert seen.body["dimensions"] == 8 and seen.body["encoding_format"] == "float"
    assert "model" not in seen.body


# --- images -----------------------------------------------------------------------------


def test_images_as_base64_pngs_charged_per_image(live_server_url, buyer):
    api = sdk(live_server_url, buyer.raw)
    answer = api.images.generate(
        model="images/uid:1", prompt="a red fox", n=2, size="256x256", response_format="b64_json"
    )
    pictures = [Image.open(io.BytesIO(base64.b64decode(d.b64_json))) for d in answer.data]
    assert [p.format for p in pictures] == ["PNG", "PNG"] and pictures[0].size == (256, 256)
    assert answer.data[0].b64_json != answer.data[1].b64_json
    assert credits(buyer) == 100 - 2 * 5
    row = only_log("/v1/images/generations")
    assert row.status == 200 and row.credits_charged == 10
    assert row.messages == [{"role": "user", "content": "a red fox"}]
    logged = MinerResponse.objects.get(request=row, is_success=True).response
    assert logged.count("image/png") == 2 and "sha256" in logged
    assert answer.data[0].b64_json[:40] not in logged  # the log keeps no image bytes


def test_images_as_urls_served_until_they_expire(live_server_url, buyer):
    answer = sdk(live_server_url, buyer.raw).images.generate(model="images/auto", prompt="a blue whale")
    url = answer.data[0].url
    assert url.startswith(live_server_url + "/v1/media/")
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).format == "PNG"
    MediaFile.objects.update(url_expires_at=timezone.now() - timedelta(seconds=1))
    gone = httpx.get(url)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


# --- speech and transcription ----------------------------------------------------------


def test_speech_streams_a_wav_and_its_transcription_gives_the_words_back(live_server_url, buyer):
    audio = speak(live_server_url, buyer, "the quick brown fox")
    with wave.open(io.BytesIO(audio)) as clip:
        assert clip.getnframes() > 0
    row = only_log("/v1/audio/speech")
    logged = MinerResponse.objects.get(request=row, is_success=True).response
    assert logged.startswith("audio/wav") and f"{len(audio)} bytes" in logged
    assert row.credits_charged == 3

    api = sdk(live_server_url, buyer.raw)
    heard = api.audio.transcriptions.create(model="transcribe/auto", file=("fox.wav", audio, "audio/wav"))
    assert heard.text == "the quick brown fox"
    plain = api.audio.transcriptions.create(
        model="transcribe/uid:1", file=("fox.wav", audio, "audio/wav"), response_format="text"
    )
    assert plain.strip() == "the quick brown fox"
    rows = Request.objects.filter(route="/v1/audio/transcriptions")
    assert rows.count() == 2 and all("audio/wav file 'fox.wav'" in r.messages[0]["content"] for r in rows)
    assert credits(buyer) == 100 - 3 - 2 * 2


def test_a_speech_miner_cut_mid_answer_cuts_the_client_and_is_logged_as_its_failure(live_server_url, buyer, media):
    media["speech"].set_behaviour([0, 1], stream_fault="reset", chunk_delay=0.05)
    with pytest.raises(Exception, match="incomplete chunked read"):
        speak(live_server_url, buyer, " ".join(["word"] * 80))
    row = only_log("/v1/audio/speech")
    (answered,) = MinerResponse.objects.filter(request=row, is_success=True)
    assert answered.error  # what the miner did
    assert row.credits_charged == 3  # audio was delivered before the cut, as with chat streams


# --- what goes wrong ----------------------------------------------------------------------


async def test_a_model_of_another_kind_or_subnet_is_a_404_naming_model(api, buyer):
    auth = {"Authorization": f"Bearer {buyer.raw}"}
    wrong_kind = await api.post("/v1/embeddings", json={"model": "images/auto", "input": "x"}, headers=auth)
    unknown = await api.post("/v1/images/generations", json={"model": "sn99/auto", "prompt": "x"}, headers=auth)
    for answer in (wrong_kind, unknown):
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "model_not_found" and answer.json()["error"]["param"] == "model"
    assert "image subnet" in wrong_kind.json()["error"]["message"]


async def test_bad_bodies_are_400s_that_hold_nothing(api, buyer):
    auth = {"Authorization": f"Bearer {buyer.raw}"}
    cases = [
        ("/v1/images/generations", {"json": {"prompt": "x", "n": 11}}, "n"),
        ("/v1/images/generations", {"json": {"prompt": "x", "size": "big"}}, "size"),
        ("/v1/embeddings", {"json": {"model": "auto", "input": []}}, "input"),
        ("/v1/audio/speech", {"json": {"model": "auto", "input": "x", "voice": "a", "speed": 9}}, "speed"),
        ("/v1/audio/transcriptions", {"data": {"model": "auto"}, "files": {"other": ("a", b"x")}}, "file"),
        ("/v1/audio/transcriptions", {"json": {"model": "auto"}}, "file"),
        (
            "/v1/audio/transcriptions",
            {"data": {"model": "auto", "prompt": "a\x00b"}, "files": {"file": ("a", b"x")}},
            "file",
        ),
    ]
    for path, body, param in cases:
        answer = await api.post(path, headers=auth, **body)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["error"]["param"] == param, (path, answer.json())
    assert await ApiKey.objects.filter(pk=buyer.key.pk, credits=100).aexists()


async def test_an_upload_past_the_limit_is_refused_before_it_is_read(api, buyer, settings):
    settings.MAX_UPLOAD_BYTES = 2_000_000
    auth = {"Authorization": f"Bearer {buyer.raw}"}
    big = await api.post(
        "/v1/audio/transcriptions", headers=auth, data={"model": "auto"}, files={"file": ("a.wav", b"0" * 2_100_000)}
    )
    assert big.status_code == 413
    fits = await api.post(
        "/v1/audio/transcriptions", headers=auth, data={"model": "auto"}, files={"file": ("a.wav", b"0" * 1_500_000)}
    )
    assert fits.status_code == 200 and "1500000 bytes" in fits.json()["text"]


async def test_failing_miners_are_retried_across_and_all_failing_charges_nothing(api, buyer, media):
    auth = {"Authorization": f"Bearer {buyer.raw}"}
    media["images"].set_behaviour(0, mode="garbage")
    answered = await api.post(
        "/v1/images/generations",
        json={"model": "images/uids:0,1", "prompt": "x", "response_format": "b64_json"},
        headers=auth,
    )
    assert answered.status_code == 200
    assert answered.json()["bittensor"]["uid"] == 1
    media["embed"].set_behaviour([0, 1], mode="error")
    failed = await api.post("/v1/embeddings", json={"model": "embed/uids:0,1", "input": "x"}, headers=auth)
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "AllMinersFailed"
    assert (await ApiKey.objects.aget(pk=buyer.key.pk)).credits == 100 - 5


async def test_models_lists_every_subnet(api, buyer):
    auth = {"Authorization": f"Bearer {buyer.raw}"}
    listed = {m["id"] for m in (await api.get("/v1/models", headers=auth)).json()["data"]}
    assert {"images/auto", "speech/best", "transcribe/top_n:3", "embed/best:3", "auto"} <= listed
    one = await api.get("/v1/models/sn19/best:2", headers=auth)
    assert one.status_code == 200 and one.json()["id"] == "sn19/best:2"
    assert (await api.get("/v1/models/sn19/nonsense", headers=auth)).status_code == 404


# --- media kept for the console -------------------------------------------------------------


def test_the_console_shows_kept_media_only_when_the_operator_keeps_it(live_server_url, buyer, console, postgres):
    from django.contrib.auth.models import User

    from endpoint.core.config import do_set_config

    api = sdk(live_server_url, buyer.raw)
    api.images.generate(model="images/auto", prompt="not kept", response_format="b64_json")
    not_kept = only_log("/v1/images/generations")
    page = console.get(f"/admin/logs/request/{not_kept.pk}/change/").content.decode()
    assert "Not kept" in page and "<img" not in page

    do_set_config("retain_media", "true")
    image = api.images.generate(model="images/auto", prompt="kept", response_format="b64_json")
    audio = speak(live_server_url, buyer, "kept words")
    api.audio.transcriptions.create(model="transcribe/auto", file=("kept.wav", audio, "audio/wav"))
    kept = {
        row.route: row.pk
        for row in Request.objects.exclude(pk=not_kept.pk)
        if row.route in ("/v1/images/generations", "/v1/audio/speech", "/v1/audio/transcriptions")
    }
    assert len(kept) == 3
    expected = {
        "/v1/images/generations": base64.b64decode(image.data[0].b64_json),
        "/v1/audio/speech": audio,
        "/v1/audio/transcriptions": audio,  # the upload
    }
    for route, request_id in kept.items():
        page = console.get(f"/admin/logs/request/{request_id}/change/").content.decode()
        assert ("<img" if "images" in route else "<audio") in page, route
        (row,) = MediaFile.objects.filter(request_id=request_id)
        served = console.get(f"/admin/logs/request/media/{row.pk}/")
        assert served.status_code == 200 and served.content == expected[route], route
        assert row.url_expires_at is None  # kept for the console, never served by URL
        assert httpx.get(f"{live_server_url}/v1/media/{row.pk}").status_code == 404

    clerk = User.objects.create_user("clerk", password="x", is_staff=True)  # staff, but may not read logs
    console.force_login(clerk)
    assert console.get(f"/admin/logs/request/media/{row.pk}/").status_code == 403


# --- more than one chat subnet; moderation ---------------------------------------------


def test_a_second_chat_subnet_answers_when_the_model_names_it(live_server_url, buyer):
    from endpoint.network.metagraph import sync_subnet

    with LocalSubnet(2, netuid=30) as other:
        row = do_add_subnet(
            "chat-b", {"name": "Chat B", "kind": "chat", "netuid": "30", "network": "local", "price": "4"}
        )
        sync_subnet(row, snapshot=other.snapshot())
        api = sdk(live_server_url, buyer.raw)
        answer = api.chat.completions.create(model="chat-b/uid:1", messages=[{"role": "user", "content": "hi"}])
        assert answer.to_dict()["bittensor"]["hotkey"] == other.miners[1].hotkey
        assert len(other.miners[1].seen) == 1
        streamed = api.chat.completions.create(
            model="sn30/auto", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices).startswith("Miner 0")
    assert credits(buyer) == 100 - 2 * 4
    with pytest.raises(openai.NotFoundError):
        api.chat.completions.create(model="images/auto", messages=[{"role": "user", "content": "hi"}])


async def test_moderation_reads_the_text_of_media_calls(api, buyer, fake_openai):
    auth = {"Authorization": f"Bearer {buyer.raw}"}
    refused = await api.post(
        "/v1/images/generations", json={"model": "images/auto", "prompt": f"a {fake_openai.flag_word}"}, headers=auth
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "FlaggedByOpenAIModerationFilter"
    spoken = await api.post(
        "/v1/audio/speech",
        json={"model": "speech/auto", "voice": "a", "input": f"{fake_openai.flag_word} words"},
        headers=auth,
    )
    assert spoken.status_code == 400
    assert await ApiKey.objects.filter(pk=buyer.key.pk, credits=100).aexists()
