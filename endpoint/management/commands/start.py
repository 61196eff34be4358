"""`manage.py start`: serve the whole site with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import uvicorn
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from endpoint.management.base import OperatorCommand, OperatorError


def unapplied_migrations() -> list[str]:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


class Command(OperatorCommand):
    help = "Start the API server (uvicorn with uvloop and httptools)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--reload", action="store_true", help="Restart on code changes (development).")

    def handle(self, *args, host: str, port: int, workers: int, reload: bool, **options):
        pending = unapplied_migrations()
        if pending:
            raise OperatorError(
                f"{len(pending)} migration(s) not applied ({', '.join(pending[:3])}…); run `manage.py migrate` first"
            )
        if workers < 1:
            raise OperatorError("--workers must be at least 1")
        self.stdout.write(f"Validator Endpoint listening on http://{host}:{port} ({workers} worker(s))")
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
        )
