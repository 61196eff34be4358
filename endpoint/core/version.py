"""The project's version: the one place it is written (`manage.py <command> --version`)."""

VERSION = "1.0.0"
