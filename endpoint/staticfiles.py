"""Static files storage: whitenoise's compressed, content-hashed files."""

from __future__ import annotations

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

log = logging.getLogger(__name__)


class CompressedHashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed names for what collectstatic wrote in its manifest; the plain
    name for anything else — before the first collect (a fresh checkout, the
    test suite) or a file added since the last one (a developer's stale
    ./staticfiles) — with a warning, instead of a 500 on every page that
    links it. `manage.py start` collects before serving, so production
    pages always get hashed names."""

    def stored_name(self, name: str) -> str:
        if not self.hashed_files:
            return name
        try:
            return super().stored_name(name)
        except ValueError:
            log.warning("static file %s is not in the collectstatic manifest; run collectstatic", name)
            return name
