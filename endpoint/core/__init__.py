"""The basement: what every app may import, and which imports no app.

Errors, models, settings values (config), the database and Redis plumbing,
secrets at rest, strategies, bounded JSON, the shared management-command base.
"""
