"""Running operator commands from tests: in this process, or as a shell would."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from django.core.management import call_command
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[1]


def manage(*args: str) -> tuple[int, str, str]:
    """Run a command in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def database_url() -> str:
    """DATABASE_URL for the test database, for the processes a test starts."""
    db = connection.settings_dict
    return f"postgres://{quote(db['USER'])}:{quote(db['PASSWORD'] or '')}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def manage_py(*args: str) -> subprocess.CompletedProcess:
    """Run `python manage.py …` against the test database, as a shell would.

    Needs committed data (the `postgres` fixture). System checks are skipped:
    they have their own tests and would only slow every call down.
    """
    url = database_url()
    command, *rest = args
    return subprocess.run(
        [sys.executable, "manage.py", command, "--skip-checks", *rest],
        cwd=BASE_DIR,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
