"""
Both ops groups (0005) see reconciliation mismatches: the dashboard panel and the read-only list.

Written out, not imported, like 0005. Reversing it takes the permission back.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ["ops (read-only)", "payments admin"]
PERMISSION = ("payments", "view_reconciliationmismatch")


def _permission(apps, schema_editor):
    app_config = apps.get_app_config("payments")
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = models_module or True  # create_permissions skips apps without models
    try:
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    finally:
        app_config.models_module = models_module
    app_label, codename = PERMISSION
    return apps.get_model("auth", "Permission").objects.get(content_type__app_label=app_label, codename=codename)


def grant(apps, schema_editor):
    permission = _permission(apps, schema_editor)
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GROUPS):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    permission = _permission(apps, schema_editor)
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GROUPS):
        group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [("payments", "0009_reconciliation_mismatch")]

    operations = [migrations.RunPython(grant, revoke)]
