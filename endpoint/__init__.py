"""The project package.

The Celery app lives in ``endpoint.celery`` and is named on the command line
(``celery -A endpoint.celery worker``), not imported here as the usual
Django/Celery recipe does: the web workers never send tasks (beat schedules
them, the worker runs them), and importing Celery, kombu and their YAML and
AMQP modules into every web worker costs memory for nothing.
"""
