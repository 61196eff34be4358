"""Viewers read the neurons too (the subnet's miners, their figures): what
the logs name by uid and hotkey, a viewer can look up. Still no keys, no
config."""

from importlib import import_module

from django.contrib.auth.management import create_permissions
from django.db import migrations

previous = import_module("logs.migrations.0002_viewer_group")
GROUP = previous.GROUP
ADDED = [("endpoint", "view_neuron")]
PERMISSIONS = [*previous.PERMISSIONS, *ADDED]


def grant(apps, schema_editor):
    # As in 0002: on a fresh database permissions are created only after all migrations.
    endpoint_config = apps.get_app_config("endpoint")
    endpoint_config.models_module = True
    create_permissions(endpoint_config, apps=apps, verbosity=0)
    endpoint_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, codename in ADDED:
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name=GROUP):
        for app_label, codename in ADDED:
            group.permissions.remove(*Permission.objects.filter(content_type__app_label=app_label, codename=codename))


class Migration(migrations.Migration):
    dependencies = [("logs", "0002_viewer_group"), ("endpoint", "0002_sync_interval_and_log_retention")]

    operations = [migrations.RunPython(grant, revoke)]
