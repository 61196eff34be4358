"""Remembers in .env what `make run` chose (DATABASE_URL, REDIS_URL) and a
SECRET_KEY of its own, so that `python manage.py …` afterwards uses the same
database and can read the secrets the server stored.

A value already in the file is kept, never replaced. Prints the values this
run uses as `export` lines for bin/run-local to eval: the environment's,
else the file's."""

import os
import secrets
import shlex
import sys
from pathlib import Path

from local_services import read_dotenv

REMEMBERED = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")
# settings.DEVELOPMENT_SECRET_KEY: what runs before .env existed encrypted the
# stored hotkey with. Kept as a key that only reads stored secrets, they stay
# readable (and move to the new key when saved) while nothing signed with the
# public development key (a session, a password reset) is accepted.
DEVELOPMENT_SECRET_KEY = "dev-insecure-change-me-validator-endpoint"
READ_ONLY = "SECRETS_ENCRYPTION_KEY_FALLBACKS"


def remember(path: Path) -> dict[str, str]:
    """Adds what the file lacks; returns the values this run uses."""
    kept = read_dotenv(path)
    added = {}
    for name in REMEMBERED:
        if name in kept:
            if os.environ.get(name) and os.environ[name] != kept[name]:
                print(
                    f"note: {path} names another {name} than this run uses; `manage.py` will use the file's",
                    file=sys.stderr,
                )
            continue
        value = os.environ.get(name) or (secrets.token_urlsafe(50) if name == "SECRET_KEY" else "")
        if value:
            added[name] = value
    if "SECRET_KEY" in added and not os.environ.get("SECRET_KEY") and READ_ONLY not in kept:
        added[READ_ONLY] = os.environ.get(READ_ONLY) or DEVELOPMENT_SECRET_KEY
    if added:
        existing = path.read_text() if path.exists() else ""
        lines = [f"{name}={value}" for name, value in added.items()]
        header = "" if existing else "# Written by `make run`; read by endpoint/settings.py. Values here are kept.\n"
        separator = "" if not existing or existing.endswith("\n") else "\n"
        path.write_text(existing + separator + header + "\n".join(lines) + "\n")
        path.chmod(0o600)  # the SECRET_KEY
    chosen = {**kept, **added}
    return {name: os.environ.get(name) or chosen.get(name, "") for name in (*REMEMBERED, READ_ONLY)}


if __name__ == "__main__":
    for name, value in remember(Path(sys.argv[1])).items():
        if value:
            print(f"export {name}={shlex.quote(value)}")
