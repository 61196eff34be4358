"""Prints DATABASE_URL=… REDIS_URL=… for `make`: what the environment names,
else what .env (written by `make run`) names, else the machine's own
PostgreSQL and Redis when they answer, so `make run`, `make manage` and
`make test` use real services when the machine has them.

Runs on the system Python (before the venv exists): standard library only."""

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

DOTENV = Path(os.environ.get("ENV_FILE") or Path(__file__).resolve().parent.parent / ".env")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (quotes stripped, comments and `export ` ignored)."""
    values = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip().removeprefix("export ").strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=0.5):
            return True
    except OSError:
        return False


def main(pg_url: str, redis_url: str) -> None:
    remembered = read_dotenv(DOTENV)
    chosen = []
    for name, url in (("DATABASE_URL", pg_url), ("REDIS_URL", redis_url)):
        if os.environ.get(name):
            chosen.append(f"{name}={os.environ[name]}")
        elif remembered.get(name):
            chosen.append(f"{name}={remembered[name]}")
        elif answers(url):
            chosen.append(f"{name}={url}")
    print(" ".join(chosen))


if __name__ == "__main__":
    main(*sys.argv[1:3])
