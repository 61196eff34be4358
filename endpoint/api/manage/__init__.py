"""The management REST API: /api/admin/… for staff (session or admin token)
and /api/keys/ for a signed-in user's own keys. Views are thin: every write
calls the same service function as the CLI and the Django admin."""
