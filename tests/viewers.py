"""The "viewer" group as its migration (logs 0002) defines it.

Transactional tests end with a flush, which empties tables that migrations
filled; the serialized rollback meant to restore them depends on test order
(and on which event loop the thread runs), so tests rebuild the group from
the migration's own list. ``test_permissions`` checks the migration itself."""

from __future__ import annotations

from importlib import import_module

from django.contrib.auth.models import Group, Permission

MIGRATION = import_module("logs.migrations.0003_viewer_reads_neurons")


def viewer_group() -> Group:
    group, _ = Group.objects.get_or_create(name=MIGRATION.GROUP)
    for app_label, codename in MIGRATION.PERMISSIONS:
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return group
