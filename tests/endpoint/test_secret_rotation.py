"""Secrets at rest survive a SECRET_KEY rotation: the hotkey mnemonic and the
OpenAI key are read with the current key or any of SECRET_KEY_FALLBACKS, and
without the right key the endpoint says so instead of failing with a 500."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
from bittensor.sp_core import Keypair
from cryptography.fernet import Fernet
from django.test import override_settings

from endpoint.core.config import do_set_config, runtime_config
from endpoint.core.encryption import SecretUnreadable
from endpoint.core.models import EndpointConfig
from keys.services import do_create_key
from tests.commands import manage

OLD, NEW = "old-secret-key-" + "a" * 40, "new-secret-key-" + "b" * 40
OPENAI_KEY = "sk-test-rotation-0123456789"


@pytest.fixture
def mnemonic() -> str:
    return Keypair.generate_mnemonic(12)


@pytest.fixture
def stored_under_old_key(mnemonic):
    with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[], SECRETS_ENCRYPTION_KEY=""):
        do_set_config("hotkey_mnemonic", mnemonic)
        do_set_config("openai_api_key", OPENAI_KEY)
    return mnemonic


def rotated(*fallbacks: str):
    """Settings after SECRET_KEY went from OLD to NEW."""
    return override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=list(fallbacks), SECRETS_ENCRYPTION_KEY="")


@pytest.mark.django_db
def test_secrets_stay_readable_through_the_fallback(stored_under_old_key):
    with rotated(OLD):
        config = runtime_config()
        assert config.hotkey_mnemonic == stored_under_old_key
        assert config.openai_api_key == OPENAI_KEY
        code, out, err = manage("config", "get", "hotkey_mnemonic")
    assert (code, out) == (0, "****** (12 words)\n"), err


@pytest.mark.django_db
def test_without_the_fallback_the_config_says_why_it_cannot_be_read(stored_under_old_key):
    with rotated():
        with pytest.raises(SecretUnreadable, match="Put the previous SECRET_KEY in SECRET_KEY_FALLBACKS"):
            runtime_config()
        code, out, err = manage("config", "get")
    assert code == 0, err
    assert out.count("unreadable: encrypted with another key (see SECRET_KEY_FALLBACKS)") == 2
    assert stored_under_old_key.split()[0] not in out + err


@pytest.mark.django_db
def test_the_admin_config_page_says_a_secret_is_unreadable(stored_under_old_key, client, admin_user):
    with rotated():
        client.force_login(admin_user)
        page = client.get(f"/admin/endpoint/endpointconfig/{EndpointConfig.load().pk}/change/")
    assert page.status_code == 200
    assert "unreadable: encrypted with another key" in page.text


@pytest.mark.django_db(transaction=True)
async def test_without_the_fallback_api_calls_get_a_503_naming_the_problem(stored_under_old_key):
    from endpoint.asgi import application
    from endpoint.core.db import run_db

    key = await run_db(do_create_key, name="rotation", credits=10)
    headers = {"Authorization": f"Bearer {key.raw}", "Endpoint-Version": "2023-05-19"}
    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 5555))
    with rotated():
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            chat = await client.post("/chat", json={"messages": [{"role": "user", "content": "hi"}]}, headers=headers)
            v1 = await client.post(
                "/v1/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
                headers=headers,
            )
            ready = await client.get("/health/ready")
    assert chat.status_code == 503
    assert chat.json()["code"] == "SecretUnreadable"
    assert "SECRET_KEY_FALLBACKS" in chat.json()["detail"]
    assert v1.status_code == 503
    assert v1.json()["error"]["code"] == "SecretUnreadable"
    assert ready.status_code == 503
    assert "cannot be decrypted" in ready.json()["checks"]["hotkey"]["detail"]


@pytest.mark.django_db
def test_saving_the_config_moves_secrets_to_the_current_key(stored_under_old_key):
    with rotated(OLD):
        do_set_config("miner_timeout", "5")  # any change saves the row
    with rotated():
        config = runtime_config()
    assert config.hotkey_mnemonic == stored_under_old_key
    assert config.openai_api_key == OPENAI_KEY


@pytest.mark.django_db
def test_a_dedicated_encryption_key_frees_secrets_from_secret_key(mnemonic):
    with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[], SECRETS_ENCRYPTION_KEY="own-key"):
        do_set_config("hotkey_mnemonic", mnemonic)
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[], SECRETS_ENCRYPTION_KEY="own-key"):
        assert runtime_config().hotkey_mnemonic == mnemonic


@pytest.mark.django_db
def test_the_old_secret_key_as_encryption_key_reads_what_it_stored(stored_under_old_key):
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[], SECRETS_ENCRYPTION_KEY=OLD):
        assert runtime_config().hotkey_mnemonic == stored_under_old_key


@pytest.mark.django_db
def test_secrets_stored_by_earlier_releases_stay_readable(mnemonic):
    # How secrets were encrypted before SECRETS_ENCRYPTION_KEY existed: a key from SECRET_KEY alone.
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"validator-endpoint/secrets/" + OLD.encode()).digest()))
    EndpointConfig.load()
    EndpointConfig.objects.filter(pk=1).update(hotkey_mnemonic_encrypted=legacy.encrypt(mnemonic.encode()).decode())
    with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[], SECRETS_ENCRYPTION_KEY=""):
        assert runtime_config().hotkey_mnemonic == mnemonic


@pytest.mark.django_db
def test_a_read_only_fallback_reads_secrets_but_signs_nothing(stored_under_old_key, client, admin_user):
    # What `make run` writes beside the key it makes: the stored hotkey stays
    # readable, a session cookie signed with the old (public) key is refused.
    with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[], SECRETS_ENCRYPTION_KEY=""):
        client.force_login(admin_user)
        assert client.get("/admin/").status_code == 200
    with override_settings(
        SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[], SECRETS_ENCRYPTION_KEY="", SECRETS_ENCRYPTION_KEY_FALLBACKS=[OLD]
    ):
        assert runtime_config().hotkey_mnemonic == stored_under_old_key
        assert client.get("/admin/").status_code == 302  # to the login page: the old session is not accepted
