"""Production settings as an operator meets them: `check --deploy` is clean
with a production environment, a missing ALLOWED_HOSTS is refused in plain
words, JSON logs are one object a line with credentials masked, and
.env.example names every setting with its default."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

from tests.commands import BASE_DIR

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-with-enough-entropy-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "api.example.com",
    "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587",
}


def run_manage(*args: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    own = ("DEBUG", "ALLOWED_HOSTS", "SECRET_KEY", "LOG_FORMAT", "EMAIL_URL")
    base = {k: v for k, v in os.environ.items() if k not in own}
    base["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_env(tmp_path):
    done = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_warns_when_https_is_switched_off(tmp_path):
    env = {**PRODUCTION, "SECURE_SSL_REDIRECT": "false", "SECURE_COOKIES": "false"}
    done = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert done.returncode != 0
    assert "SECURE_SSL_REDIRECT" in done.stderr and "SESSION_COOKIE_SECURE" in done.stderr


def test_debug_off_without_allowed_hosts_is_refused_clearly(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "ALLOWED_HOSTS"}
    done = run_manage("check", env=env, tmp_path=tmp_path)
    assert done.returncode != 0
    assert "ALLOWED_HOSTS must be set when DEBUG is off" in done.stderr


def test_json_logs_are_one_object_a_line_without_keys_or_mnemonics(tmp_path):
    key = "vep_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56"
    mnemonic = "abandon ability able about above absent absorb abstract absurd abuse access accident"
    code = (
        "import logging; log = logging.getLogger('endpoint.test');"
        f"log.warning('key %s used', {key!r});"
        f"log.warning('config %s', {{'hotkey_mnemonic': {mnemonic!r}}});"
        "log.warning('header Authorization: Bearer %s', 'sk-live-0123456789abcdef')"
    )
    done = run_manage("shell", "-c", code, env={"LOG_FORMAT": "json"}, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    messages = [entry["message"] for entry in lines if entry["logger"] == "endpoint.test"]
    assert len(messages) == 3
    assert all(entry["level"] == "WARNING" and "time" in entry for entry in lines)
    assert key not in done.stderr and "vep_Ab12…" in messages[0]
    assert "abandon" not in done.stderr
    assert "sk-live-0123456789abcdef" not in done.stderr and "Bearer ***" in messages[2]


def _env_calls() -> dict[str, object]:
    """Every variable settings.py reads through django-environ, with its
    default when that is a literal."""
    tree = ast.parse((BASE_DIR / "endpoint" / "settings.py").read_text())
    found: dict[str, object] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "env"):
            continue
        if not node.args or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
            continue
        default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
        found[node.args[0].value] = default.value if isinstance(default, ast.Constant) else ...
    return found


def _env_example() -> tuple[dict[str, str], set[str]]:
    """The template's values, and the names its comments mark as a
    deployment's own (``(production)`` or ``REQUIRED``) rather than the default."""
    values, marked, comment = {}, set(), ""
    for line in (BASE_DIR / ".env.example").read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):
            comment += line
        elif "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            values[name] = value
            if "(production)" in comment or "REQUIRED" in comment:
                marked.add(name)
            comment = ""
    return values, marked


def deployment_env(**filled: str) -> dict[str, str]:
    """.env.example as docs/deploy.md has an operator fill it in."""
    values, _ = _env_example()
    values.pop("DATABASE_URL")  # the test's own database
    return {**values, **filled}


def test_the_deploy_template_as_is_refuses_to_start(tmp_path):
    done = run_manage("check", env=deployment_env(), tmp_path=tmp_path)
    assert done.returncode != 0
    assert "SECRET_KEY must be set to a secret of your own" in done.stderr


def test_the_development_secret_key_is_refused_in_production(tmp_path):
    env = {**PRODUCTION, "SECRET_KEY": "dev-insecure-change-me-validator-endpoint"}
    done = run_manage("check", env=env, tmp_path=tmp_path)
    assert done.returncode != 0 and "SECRET_KEY must be set" in done.stderr


def test_the_deploy_template_filled_in_passes_check_deploy(tmp_path):
    env = deployment_env(
        SECRET_KEY=PRODUCTION["SECRET_KEY"], ALLOWED_HOSTS="api.example.com", EMAIL_URL=PRODUCTION["EMAIL_URL"]
    )
    done = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_warns_when_sign_up_email_is_never_sent(tmp_path):
    env = {**PRODUCTION, "EMAIL_URL": "consolemail://"}
    done = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert done.returncode != 0
    assert "endpoint.W001" in done.stderr and "EMAIL_URL" in done.stderr


def test_env_example_lists_every_setting_with_its_default():
    calls, (example, production) = _env_calls(), _env_example()
    assert {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "EMAIL_URL", "SECURE_SSL_REDIRECT"} <= production
    assert len(calls) > 20
    missing = sorted(set(calls) - set(example))
    assert not missing, f".env.example lacks {missing}"
    for name, default in calls.items():
        if default is ... or default is None or name in production:
            continue  # computed default (it depends on DEBUG, or a path): named, value documented in a comment
        written = example[name]
        if isinstance(default, bool):
            assert written.lower() == str(default).lower(), name
        elif isinstance(default, (int, float)):
            assert float(written) == float(default), name
        else:
            assert written == default, name
