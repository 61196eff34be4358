"""`manage.py start`: serve the whole site with uvicorn (uvloop + httptools),
static files included (whitenoise, from a fresh collectstatic)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import uvicorn
from django.conf import settings
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from uvicorn.supervisors import multiprocess

from endpoint.core.commands import OperatorCommand
from endpoint.core.errors import OperatorError
from endpoint.management.workers import WorkerProcess
from logs.services import sweep_credits


def unapplied_migrations() -> list[str]:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def collect_static() -> None:
    """Hashed, compressed copies of every static file, for whitenoise."""
    try:
        call_command("collectstatic", interactive=False, verbosity=0)
    except Exception as exc:
        raise OperatorError(f"collectstatic into {settings.STATIC_ROOT} failed: {exc}") from exc


def prepare_metrics_dir(processes: int) -> str | None:
    """An empty directory for the workers' Prometheus counters (see
    endpoint.metrics), or None when one process keeps them in memory.

    It goes to the workers through their environment: prometheus_client
    picks its storage when first imported, which is before settings load."""
    configured = settings.PROMETHEUS_MULTIPROC_DIR
    if not configured and processes == 1:
        return None
    path = Path(configured or tempfile.mkdtemp(prefix="vep-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # counts from a previous run would be summed in
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return str(path)


class Command(OperatorCommand):
    help = "Start the API server (uvicorn with uvloop and httptools)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--reload", action="store_true", help="Restart on code changes (development).")
        parser.add_argument(
            "--no-collectstatic", action="store_true", help="Static files were collected already (e.g. at build)."
        )

    def handle(self, *args, host: str, port: int, workers: int, reload: bool, no_collectstatic: bool, **options):
        pending = unapplied_migrations()
        if pending:
            raise OperatorError(
                f"{len(pending)} migration(s) not applied ({', '.join(pending[:3])}…); run `manage.py migrate` first"
            )
        if workers < 1:
            raise OperatorError("--workers must be at least 1")
        if not no_collectstatic:
            collect_static()
        released, _ = sweep_credits()  # holds a previous run left behind, past their deadline
        if released:
            self.stdout.write(f"released {len(released)} abandoned hold(s) of a previous run")
        # --reload serves from one child process, whatever --workers says.
        metrics_dir = prepare_metrics_dir(1 if reload else workers)
        self.stdout.write(f"Validator Endpoint listening on http://{host}:{port} ({workers} worker(s))")
        try:
            self._serve(host, port, workers, reload)
        finally:
            if metrics_dir and not settings.PROMETHEUS_MULTIPROC_DIR:
                shutil.rmtree(metrics_dir, ignore_errors=True)

    def _serve(self, host: str, port: int, workers: int, reload: bool) -> None:
        # uvicorn's supervisor makes its workers by this module-level name.
        multiprocess.Process = WorkerProcess
        uvicorn.run(
            "endpoint.asgi:application",
            host=host,
            port=port,
            workers=None if reload else workers,
            reload=reload,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
            # uvicorn's own logging config would give its loggers plain-text
            # handlers of their own; without it they reach Django's LOGGING:
            # JSON when LOG_FORMAT=json, and masked like every other line.
            log_config=None,
        )
