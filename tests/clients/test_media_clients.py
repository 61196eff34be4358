"""The official openai Node SDK on the media routes (the Python SDK's are
tests/endpoint/api/test_media_routes.py): embeddings (base64 by default,
decoded by the SDK), images, speech read as a stream, and a transcription
of that speech uploaded with the SDK's own toFile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from keys.services import do_create_key
from tests.conftest import missing_service

pytestmark = pytest.mark.django_db(transaction=True)

NODE_DIR = Path(__file__).parent / "node"


def node_media(feature: str, base: str, raw_key: str) -> dict:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "openai").is_dir():
        missing_service("Node.js with the openai package (make test installs it: npm ci in tests/clients/node)")
    env = {**os.environ, "VEP_BASE_URL": base + "/v1", "VEP_KEY": raw_key}
    run = subprocess.run(
        [node, "media.mjs", feature], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def test_the_node_sdk_on_every_media_route(live_server_url, media):
    raw = do_create_key(name="node", credits=100).raw
    embeddings = node_media("embeddings", live_server_url, raw)
    assert embeddings["vectors"] == [64, 64] and embeddings["index"] == [0, 1]
    assert embeddings["usage"]["prompt_tokens"] > 0
    images = node_media("images", live_server_url, raw)
    assert images == {"images": 1, "magic": "PNG"}
    speech = node_media("speech", live_server_url, raw)
    assert speech["type"] == "audio/wav" and speech["riff"] == "RIFF" and speech["bytes"] > 1000
    assert node_media("transcription", live_server_url, raw) == {"text": "words spoken in node"}
