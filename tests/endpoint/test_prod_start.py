"""`manage.py start` refuses to serve a database that is behind its code."""

from __future__ import annotations

from tests.endpoint.test_prod_settings import run_manage


def test_start_refuses_unapplied_migrations_and_says_why(tmp_path):
    done = run_manage("start", "--port", "0", env={}, tmp_path=tmp_path)  # a fresh, empty database
    assert done.returncode == 1
    assert "migration(s) not applied" in done.stderr
    assert "run `manage.py migrate` first" in done.stderr
    assert "listening" not in done.stdout
