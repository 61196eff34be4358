"""The "viewer" group: staff in it read the request logs and the dashboard
(which needs logs.view_request), and nothing else: no keys, no config."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "viewer"
PERMISSIONS = [("logs", "view_request"), ("logs", "view_minerresponse")]


def create_viewer_group(apps, schema_editor):
    # Permissions are normally created after all migrations ran; this one needs
    # the logs app's now, on a fresh database.
    logs_config = apps.get_app_config("logs")
    logs_config.models_module = True
    create_permissions(logs_config, apps=apps, verbosity=0)
    logs_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, codename in PERMISSIONS:
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_viewer_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("logs", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_viewer_group, remove_viewer_group)]
