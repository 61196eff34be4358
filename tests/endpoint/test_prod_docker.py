"""The deployment files: docker-compose.yml runs every service with a
healthcheck (no Docker engine here to run it); the image runs as a non-root
user with static files collected."""

from __future__ import annotations

import yaml

from tests.commands import BASE_DIR

SERVICES = {"caddy", "web", "worker", "beat", "postgres", "redis"}


def compose_file() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_healthchecks_and_volumes():
    compose = compose_file()
    assert set(compose["services"]) == SERVICES
    for name, service in compose["services"].items():
        assert "healthcheck" in service or "healthcheck" in compose["x-app"], name
    web = compose["services"]["web"]
    assert "/health/live" in " ".join(web["healthcheck"]["test"])
    assert "manage.py start" in web["command"] and "migrate" in web["command"]
    assert {"pgdata", "redisdata", "caddydata"} <= set(compose["volumes"])


def test_only_the_tls_proxy_faces_the_internet():
    compose = compose_file()
    # The app is published on the host's loopback only; Caddy takes 80/443 and proxies to it.
    assert all(p.startswith("127.0.0.1:") for p in compose["services"]["web"]["ports"])
    assert {"80:80", "443:443"} <= set(compose["services"]["caddy"]["ports"])
    caddyfile = (BASE_DIR / "deploy" / "Caddyfile").read_text()
    assert "{$DOMAIN}" in caddyfile and "reverse_proxy web:8000" in caddyfile
    # Caddy sets X-Forwarded-Proto, which the template tells Django to trust.
    assert "SECURE_PROXY_SSL_HEADER=true" in (BASE_DIR / ".env.example").read_text().splitlines()


def test_image_runs_as_non_root_with_collected_static_files():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert dockerfile.startswith("FROM python:3.11-slim")
    lines = dockerfile.splitlines()
    user = next(i for i, line in enumerate(lines) if line.startswith("USER "))
    assert lines[user] != "USER root"
    collect = next(i for i, line in enumerate(lines) if "collectstatic" in line)
    assert collect > user  # collected as the user that will serve them
    assert "--no-collectstatic" in lines[-1]
