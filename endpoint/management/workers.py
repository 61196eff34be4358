"""uvicorn's worker processes as `manage.py start` makes them. Kept free of
Django imports: each worker unpickles this class before Django is set up."""

from __future__ import annotations

import signal
import threading

from uvicorn.supervisors import multiprocess


class WorkerProcess(multiprocess.Process):
    """A uvicorn worker that ignores Ctrl-C until uvicorn takes SIGINT over.
    Ctrl-C reaches every process of the terminal's group, and a worker still
    importing Python would die of it with a KeyboardInterrupt traceback; the
    supervisor, which gets it too, stops its workers with SIGTERM
    (gracefully) instead. A blocked signal mask is not enough: a spawned
    child starts with an empty mask, but an ignored signal stays ignored
    through exec, and Python keeps it so until uvicorn installs its handler."""

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            super().start()
            return
        # The supervisor ignores Ctrl-C too while a worker is being spawned (milliseconds).
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            super().start()
        finally:
            signal.signal(signal.SIGINT, handler)
