"""uvicorn's worker processes as `manage.py start` makes them. Kept free of
Django imports: each worker unpickles this class before Django is set up."""

from __future__ import annotations

import signal

from uvicorn.supervisors import multiprocess


class WorkerProcess(multiprocess.Process):
    """A uvicorn worker started with SIGINT blocked. Ctrl-C reaches every
    process of the terminal's group, and a worker still importing Python
    would die of it with a KeyboardInterrupt traceback; the supervisor, which
    gets it too, stops its workers with SIGTERM (gracefully) instead."""

    def start(self) -> None:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            super().start()  # the child inherits the mask at fork/exec
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
