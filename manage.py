#!/usr/bin/env python
import os
import signal
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "endpoint.settings")
    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except KeyboardInterrupt:
        # Ctrl-C is the operator's "stop", not a bug: no traceback, whatever
        # the command was doing (starting up, migrating, serving).
        sys.stderr.write("Interrupted.\n")
        sys.exit(128 + signal.SIGINT)


if __name__ == "__main__":
    main()
