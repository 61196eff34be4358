"""The local subnet's other kinds: image, speech, transcription and
embeddings miners, asked with real signed requests over loopback."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import wave

import httpx
import orjson
import pytest
from bittensor.sp_core import Keypair
from PIL import Image

from endpoint.core.models import Subnet
from endpoint.network.localnet import KIND_PATHS, LocalSubnet, Miner, MinerBehaviour
from tests.endpoint.network.test_localnet import ROOT, free_port_run, signed

MEDIA_KINDS = ("image", "speech", "transcription", "embeddings")
WORDS = "the quick brown fox jumps over the lazy dog"


@pytest.fixture(scope="module")
def subnets():
    running = {kind: LocalSubnet(2, kind=kind, netuid=10 + i) for i, kind in enumerate(MEDIA_KINDS)}
    for subnet in running.values():
        subnet.start()
    yield running
    for subnet in running.values():
        subnet.stop()


@pytest.fixture(autouse=True)
def _normal_miners(subnets):
    for subnet in subnets.values():
        subnet.reset()


@pytest.fixture(scope="module")
def validator() -> Keypair:
    return Keypair.create_from_uri("//test/validator")


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        yield http


async def post(
    client: httpx.AsyncClient,
    validator: Keypair,
    miner: Miner,
    path: str,
    body: dict | bytes,
    content_type: str = "application/json",
) -> httpx.Response:
    raw, headers = signed(validator, miner.hotkey, body, path)
    return await client.post(
        f"http://{miner.axon}{path}", content=raw, headers={**headers, "Content-Type": content_type}
    )


def form(fields: dict[str, str], file: tuple[str, bytes, str] | None) -> tuple[bytes, str]:
    """A multipart/form-data body as an OpenAI client encodes it, and its content type."""
    request = httpx.Request("POST", "http://miner/", data=fields, files={"file": file} if file else None)
    if file is None:  # httpx sends fields alone urlencoded; force multipart with an empty extra file part
        request = httpx.Request("POST", "http://miner/", data=fields, files={"extra": ("x.txt", b"", "text/plain")})
    return request.read(), request.headers["Content-Type"]


def riff_comment(data: bytes) -> str | None:
    """The LIST/INFO/ICMT text of a WAV, read independently of the miners' own reader."""
    position = 12
    while position + 8 <= len(data):
        tag, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        if tag == b"LIST" and data[position + 8 : position + 12] == b"INFO":
            sub = position + 12
            while sub < position + 8 + size:
                sub_tag, sub_size = data[sub : sub + 4], struct.unpack("<I", data[sub + 4 : sub + 8])[0]
                if sub_tag == b"ICMT":
                    return data[sub + 8 : sub + 8 + sub_size].rstrip(b"\0").decode()
                sub += 8 + sub_size + sub_size % 2
        position += 8 + size + size % 2
    return None


# --- kinds and paths ------------------------------------------------------------------


def test_every_subnet_kind_has_its_openai_path():
    assert set(KIND_PATHS) == set(Subnet.Kind.values)
    assert KIND_PATHS["image"] == "/v1/images/generations"
    assert LocalSubnet(1).path == "/v1/chat/completions"
    assert LocalSubnet(1, kind="speech").path == "/v1/audio/speech"
    assert LocalSubnet(1, kind="embeddings", path="/~m/v1/embeddings").path == "/~m/v1/embeddings"
    with pytest.raises(ValueError, match="unknown subnet kind"):
        LocalSubnet(1, kind="video")


def test_a_media_subnet_snapshot_has_its_netuid(subnets):
    snapshot = subnets["image"].snapshot()
    assert snapshot["netuid"] == 10
    assert [n["axon"] for n in snapshot["neurons"]] == [m.axon for m in subnets["image"].miners]


@pytest.mark.parametrize("kind", MEDIA_KINDS)
async def test_an_unsigned_request_is_refused(subnets, client, kind):
    miner = subnets[kind].miners[0]
    r = await client.post(f"http://{miner.axon}{KIND_PATHS[kind]}", json={"input": "hi", "prompt": "hi"})
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert miner.seen[-1].auth_error == "MalformedAuth"


@pytest.mark.parametrize("kind", MEDIA_KINDS)
async def test_another_kinds_path_is_not_found(subnets, validator, client, kind):
    miner = subnets[kind].miners[0]
    r = await post(client, validator, miner, "/v1/chat/completions", {"messages": []})
    assert r.status_code == 404
    assert not miner.seen


async def test_a_miner_told_not_to_check_answers_unsigned_media_requests(subnets, client):
    subnet = subnets["embeddings"]
    subnet.set_behaviour(0, require_auth=False)
    r = await client.post(f"http://{subnet.miners[0].axon}{subnet.path}", json={"input": "hi"})
    assert r.status_code == 200
    assert len(r.json()["data"][0]["embedding"]) == 64
    assert subnet.miners[0].seen[-1].caller_hotkey is None


# --- embeddings ----------------------------------------------------------------------------


async def embed(client, validator, miner, **body) -> httpx.Response:
    return await post(client, validator, miner, KIND_PATHS["embeddings"], {"encoding_format": "float", **body})


async def test_embeddings_are_unit_vectors_one_per_input_in_order(subnets, validator, client):
    miner = subnets["embeddings"].miners[1]
    r = await embed(client, validator, miner, model="emb-test", input=["alpha", "beta gamma", "alpha"], dimensions=16)
    assert r.status_code == 200
    answer = r.json()
    assert answer["object"] == "list"
    assert answer["model"] == "emb-test"
    assert answer["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert [d["index"] for d in answer["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" for d in answer["data"])
    vectors = [d["embedding"] for d in answer["data"]]
    for vector in vectors:
        assert len(vector) == 16
        assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-9)
    assert vectors[0] == vectors[2]
    assert vectors[0] != vectors[1]
    (seen,) = miner.seen
    assert seen.caller_hotkey == validator.ss58_address
    assert seen.body["input"] == ["alpha", "beta gamma", "alpha"]


async def test_the_same_text_embeds_the_same_on_every_miner(subnets, validator, client):
    first, second = subnets["embeddings"].miners
    a = (await embed(client, validator, first, input=WORDS)).json()
    b = (await embed(client, validator, second, input=[WORDS])).json()
    assert a["model"] == "localnet"
    assert len(a["data"][0]["embedding"]) == 64  # the default dimension
    assert a["data"][0]["embedding"] == b["data"][0]["embedding"]
    other = (await embed(client, validator, second, input=WORDS + ".")).json()
    assert other["data"][0]["embedding"] != a["data"][0]["embedding"]


async def test_token_arrays_embed_too(subnets, validator, client):
    miner = subnets["embeddings"].miners[0]
    single = (await embed(client, validator, miner, input=[1, 2, 3])).json()
    batch = (await embed(client, validator, miner, input=[[1, 2, 3], [4]])).json()
    assert len(single["data"]) == 1 and len(batch["data"]) == 2
    assert single["data"][0]["embedding"] == batch["data"][0]["embedding"]
    assert batch["usage"]["prompt_tokens"] == 4


async def test_base64_embeddings_are_the_same_floats(subnets, validator, client):
    miner = subnets["embeddings"].miners[0]
    floats = (await embed(client, validator, miner, input="x", dimensions=8)).json()["data"][0]["embedding"]
    encoded = (await embed(client, validator, miner, input="x", dimensions=8, encoding_format="base64")).json()
    unpacked = struct.unpack("<8f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(unpacked, floats, strict=True))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        {"model": "m"},
        {"input": []},
        {"input": ["a", 1]},
        {"input": "a", "dimensions": 0},
        {"input": "a", "dimensions": 4097},
        {"input": "a", "dimensions": True},
    ],
)
async def test_bad_embeddings_bodies_are_400(subnets, validator, client, body):
    miner = subnets["embeddings"].miners[0]
    r = await post(client, validator, miner, KIND_PATHS["embeddings"], body)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert miner.seen[-1].caller_hotkey == validator.ss58_address


# --- images ---------------------------------------------------------------------------------------


async def draw(client, validator, miner, **body) -> httpx.Response:
    return await post(client, validator, miner, KIND_PATHS["image"], {"response_format": "b64_json", **body})


def pngs(answer: dict) -> list[bytes]:
    return [base64.b64decode(d["b64_json"]) for d in answer["data"]]


async def test_images_are_pngs_of_the_asked_size(subnets, validator, client):
    miner = subnets["image"].miners[1]
    r = await draw(client, validator, miner, prompt="a red fox", n=3, size="512x128", model="img-test")
    assert r.status_code == 200
    answer = r.json()
    assert isinstance(answer["created"], int) and abs(answer["created"] - time.time()) < 60
    assert [d["revised_prompt"] for d in answer["data"]] == ["Miner 1 drew: a red fox"] * 3
    images = pngs(answer)
    for png in images:
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG"
            assert image.size == (512, 128)
    assert len(set(images)) == 3  # the n images of one request differ
    assert miner.seen[-1].body["prompt"] == "a red fox"


async def test_the_same_prompt_draws_the_same_picture(subnets, validator, client):
    miner = subnets["image"].miners[0]
    first = pngs((await draw(client, validator, miner, prompt="a lighthouse")).json())
    again = pngs((await draw(client, validator, miner, prompt="a lighthouse")).json())
    other = pngs((await draw(client, validator, miner, prompt="a lighthouse at night")).json())
    assert first == again
    assert first != other
    with Image.open(io.BytesIO(first[0])) as image:
        assert image.size == (256, 256)  # the default size


async def test_image_sides_are_capped_and_urls_are_data_urls(subnets, validator, client):
    miner = subnets["image"].miners[0]
    r = await draw(client, validator, miner, prompt="wide", size="2048x64", response_format="url")
    url = r.json()["data"][0]["url"]
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.removeprefix("data:image/png;base64,")))) as image:
        assert image.size == (1024, 64)


@pytest.mark.parametrize(
    "body",
    [{}, {"prompt": ""}, {"prompt": "x", "n": 0}, {"prompt": "x", "n": 11}, {"prompt": "x", "size": "big"}],
)
async def test_bad_image_bodies_are_400(subnets, validator, client, body):
    r = await post(client, validator, subnets["image"].miners[0], KIND_PATHS["image"], body)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


# --- speech ----------------------------------------------------------------------------------------


async def speak(client, validator, miner, text: str = WORDS, **body) -> httpx.Response:
    payload = {"model": "tts-test", "input": text, "voice": "alloy", **body}
    return await post(client, validator, miner, KIND_PATHS["speech"], payload)


async def test_speech_is_a_wav_carrying_its_text(subnets, validator, client):
    r = await speak(client, validator, subnets["speech"].miners[0], response_format="mp3")
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wav"  # whatever format was asked
    with wave.open(io.BytesIO(r.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert 0.2 <= wav.getnframes() / wav.getframerate() <= 5.0
    assert riff_comment(r.content) == WORDS


async def test_speech_is_the_same_for_the_same_text_and_capped_at_five_seconds(subnets, validator, client):
    miner = subnets["speech"].miners[1]
    assert (await speak(client, validator, miner)).content == (await speak(client, validator, miner)).content
    long = " ".join(["word"] * 1000)
    r = await speak(client, validator, miner, long)
    with wave.open(io.BytesIO(r.content)) as wav:
        assert wav.getnframes() / wav.getframerate() <= 5.0
    assert riff_comment(r.content) == long


async def test_speech_arrives_in_several_chunks(subnets, validator, client):
    subnet = subnets["speech"]
    subnet.set_behaviour(0, chunk_delay=0.05)
    miner = subnet.miners[0]
    raw, headers = signed(validator, miner.hotkey, {"input": WORDS, "voice": "alloy"}, subnet.path)
    pieces = []
    async with client.stream("POST", f"http://{miner.axon}{subnet.path}", content=raw, headers=headers) as r:
        assert r.headers["transfer-encoding"] == "chunked"
        async for piece in r.aiter_raw():
            pieces.append(piece)
    assert len(pieces) > 1
    assert riff_comment(b"".join(pieces)) == WORDS


async def test_a_speech_stream_reset_cuts_after_the_first_chunk(subnets, validator, client):
    subnet = subnets["speech"]
    subnet.set_behaviour(0, stream_fault="reset")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await speak(client, validator, subnet.miners[0])


async def test_a_dripping_speech_stream_sends_the_rest_a_byte_at_a_time(subnets, validator, client):
    subnet = subnets["speech"]
    subnet.set_behaviour(0, stream_fault="drip", chunk_delay=0.1)
    miner = subnet.miners[0]
    raw, headers = signed(validator, miner.hotkey, {"input": WORDS, "voice": "alloy"}, subnet.path)
    pieces = []
    async with client.stream("POST", f"http://{miner.axon}{subnet.path}", content=raw, headers=headers) as r:
        async for piece in r.aiter_raw():
            pieces.append((time.perf_counter(), piece))
            if len(pieces) == 3:
                break
    assert len(pieces[0][1]) == 4096
    assert [len(piece) for _, piece in pieces[1:]] == [1, 1]
    assert pieces[2][0] - pieces[1][0] >= 0.08


@pytest.mark.parametrize("body", [{"voice": "alloy"}, {"input": "hi"}, {"input": "hi", "voice": "a", "speed": 9}])
async def test_bad_speech_bodies_are_400(subnets, validator, client, body):
    r = await post(client, validator, subnets["speech"].miners[0], KIND_PATHS["speech"], body)
    assert r.status_code == 400


# --- transcription ----------------------------------------------------------------------------------


async def transcribe(client, validator, miner, file, **fields) -> httpx.Response:
    raw, content_type = form({"model": "whisper-test", **fields}, file)
    return await post(client, validator, miner, KIND_PATHS["transcription"], raw, content_type)


async def test_speech_transcribes_back_to_its_words(subnets, validator, client):
    audio = (await speak(client, validator, subnets["speech"].miners[0])).content
    miner = subnets["transcription"].miners[1]
    r = await transcribe(client, validator, miner, ("speech.wav", audio, "audio/wav"), language="en")
    assert r.status_code == 200
    assert r.json() == {"text": WORDS}
    seen = miner.seen[-1].body
    assert seen == {
        "model": "whisper-test",
        "language": "en",
        "file": {
            "filename": "speech.wav",
            "content_type": "audio/wav",
            "size": len(audio),
            "sha256": hashlib.sha256(audio).hexdigest(),
        },
    }


async def test_other_audio_is_described(subnets, validator, client):
    data = b"\x00\xffnot a wav\r\n--x\r\n"
    r = await transcribe(client, validator, subnets["transcription"].miners[1], ("a.mp3", data, "audio/mpeg"))
    digest = hashlib.sha256(data).hexdigest()[:12]
    assert r.json() == {"text": f"Miner 1 heard {len(data)} bytes of audio/mpeg (sha256 {digest})"}


async def test_transcription_formats(subnets, validator, client):
    audio = (await speak(client, validator, subnets["speech"].miners[0])).content
    miner = subnets["transcription"].miners[0]
    file = ("speech.wav", audio, "audio/wav")
    text = await transcribe(client, validator, miner, file, response_format="text")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text == WORDS
    accented = (await speak(client, validator, subnets["speech"].miners[0], "café déjà vu")).content
    plain = await transcribe(client, validator, miner, ("a.wav", accented, "audio/wav"), response_format="text")
    assert plain.text == "café déjà vu"
    verbose = (await transcribe(client, validator, miner, file, response_format="verbose_json")).json()
    with wave.open(io.BytesIO(audio)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert verbose == {"task": "transcribe", "language": "english", "duration": round(seconds, 3), "text": WORDS}


async def test_a_transcription_without_a_file_is_400(subnets, validator, client):
    miner = subnets["transcription"].miners[0]
    r = await transcribe(client, validator, miner, None)
    assert r.status_code == 400
    assert "file" in r.json()["error"]["message"]
    assert miner.seen[-1].caller_hotkey == validator.ss58_address
    not_a_form = await post(client, validator, miner, KIND_PATHS["transcription"], {"file": "x"})
    assert not_a_form.status_code == 400
    bad_format = await transcribe(client, validator, miner, ("a.wav", b"x", "audio/wav"), response_format="srt")
    assert bad_format.status_code == 400


# --- faults ------------------------------------------------------------------------------------------


def good_request(kind: str) -> tuple[dict | bytes, str]:
    if kind == "transcription":
        return form({"model": "m"}, ("a.bin", b"abc", "application/octet-stream"))
    bodies = {
        "image": {"prompt": "a boat", "response_format": "b64_json"},
        "speech": {"input": WORDS, "voice": "alloy"},
        "embeddings": {"input": WORDS, "encoding_format": "float"},
    }
    return bodies[kind], "application/json"


async def ask_kind(client, validator, subnets, kind: str) -> httpx.Response:
    body, content_type = good_request(kind)
    return await post(client, validator, subnets[kind].miners[0], KIND_PATHS[kind], body, content_type)


@pytest.mark.parametrize("kind", MEDIA_KINDS)
async def test_error_mode_and_failure_rate_answer_500_json(subnets, validator, client, kind):
    subnets[kind].set_behaviour(0, mode="error")
    r = await ask_kind(client, validator, subnets, kind)
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error"
    subnets[kind].set_behaviour(0, mode="ok", failure_rate=1.0)
    assert (await ask_kind(client, validator, subnets, kind)).status_code == 500


@pytest.mark.parametrize("kind", MEDIA_KINDS)
async def test_garbage_mode_answers_200_html(subnets, validator, client, kind):
    subnets[kind].set_behaviour(0, mode="garbage")
    r = await ask_kind(client, validator, subnets, kind)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        r.json()


@pytest.mark.parametrize("kind", MEDIA_KINDS)
async def test_empty_mode_answers_nothing(subnets, validator, client, kind):
    subnets[kind].set_behaviour(0, mode="empty")
    r = await ask_kind(client, validator, subnets, kind)
    assert r.status_code == 200
    if kind == "speech":
        assert r.headers["content-type"] == "audio/wav"
        assert r.content == b""
    elif kind == "transcription":
        assert r.json() == {"text": ""}
    else:
        assert r.json()["data"] == []


@pytest.mark.parametrize("kind", MEDIA_KINDS)
async def test_refuse_mode_is_a_content_policy_error_for_images_and_speech_only(subnets, validator, client, kind):
    subnets[kind].set_behaviour(0, mode="refuse")
    r = await ask_kind(client, validator, subnets, kind)
    if kind in ("image", "speech"):
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "content_policy_violation"
    else:
        assert r.status_code == 200


@pytest.mark.parametrize("kind", MEDIA_KINDS)
async def test_reset_and_hang_modes(subnets, validator, kind):
    subnets[kind].set_behaviour(0, mode="reset")
    async with httpx.AsyncClient(timeout=0.5, trust_env=False) as impatient:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await ask_kind(impatient, validator, subnets, kind)
        subnets[kind].set_behaviour(0, mode="hang")
        with pytest.raises(httpx.ReadTimeout):
            await ask_kind(impatient, validator, subnets, kind)


async def test_huge_speech_floods_as_audio(subnets, validator, client):
    subnets["speech"].set_behaviour(0, mode="huge")
    r = await ask_kind(client, validator, subnets, "speech")
    assert r.headers["content-type"] == "audio/wav"
    assert len(r.content) > 10 * 1024 * 1024


async def test_latency_delays_a_media_answer(subnets, validator, client):
    subnets["image"].set_behaviour(0, latency=0.3)
    started = time.perf_counter()
    assert (await ask_kind(client, validator, subnets, "image")).status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_ignore_format_is_no_fault_for_media():
    assert MinerBehaviour(mode="ignore_format").mode == "ignore_format"  # accepted; media miners answer normally


async def test_ignore_format_answers_normally(subnets, validator, client):
    subnets["embeddings"].set_behaviour(0, mode="ignore_format")
    r = await ask_kind(client, validator, subnets, "embeddings")
    assert r.status_code == 200 and len(r.json()["data"]) == 1


# --- the command --------------------------------------------------------------------------------------


def test_the_localnet_command_serves_another_kind(tmp_path, validator):
    port = free_port_run(1)
    out = tmp_path / "m.json"
    cmd = [sys.executable, "manage.py", "localnet", "--miners", "1", "--port", str(port), "--out", str(out)]
    cmd += ["--kind", "embeddings", "--netuid", "23"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not out.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the snapshot was not written"
            time.sleep(0.05)
        snapshot = json.loads(out.read_text())
        assert snapshot["netuid"] == 23
        neuron = snapshot["neurons"][0]
        raw, headers = signed(validator, neuron["hotkey"], {"input": "hi"}, "/v1/embeddings")
        r = httpx.post(
            f"http://{neuron['axon']}/v1/embeddings", content=raw, headers=headers, timeout=5, trust_env=False
        )
        assert len(r.json()["data"][0]["embedding"]) == 64
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "embeddings miners on /v1/embeddings" in stdout
    assert orjson.loads(out.read_bytes())["neurons"][0]["axon"] == f"127.0.0.1:{port}"
