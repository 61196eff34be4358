"""Prints DATABASE_URL=… REDIS_URL=… for the machine's own PostgreSQL and
Redis when they answer and the environment names none (used by the Makefile,
so `make run` and `make test` use real services when the machine has them)."""

import os
import socket
import sys
from urllib.parse import urlparse


def answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=0.5):
            return True
    except OSError:
        return False


def main(pg_url: str, redis_url: str) -> None:
    chosen = []
    for name, url in (("DATABASE_URL", pg_url), ("REDIS_URL", redis_url)):
        if os.environ.get(name):
            chosen.append(f"{name}={os.environ[name]}")
        elif answers(url):
            chosen.append(f"{name}={url}")
    print(" ".join(chosen))


if __name__ == "__main__":
    main(*sys.argv[1:3])
