"""
The ops groups (payments 0005) and webhook events: both see them (and the dashboard's parked events);
"payments admin" may also replay one.

Written out, not imported, like payments 0005 and 0007. Reversing it takes the permissions back.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "ops (read-only)": [("webhooks", "view_webhookevent")],
    "payments admin": [("webhooks", "view_webhookevent"), ("webhooks", "replay_webhookevent")],
}


def _permissions(apps, schema_editor) -> dict:
    app_config = apps.get_app_config("webhooks")
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = models_module or True  # create_permissions skips apps without models
    try:
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    finally:
        app_config.models_module = models_module
    permission = apps.get_model("auth", "Permission")
    return {
        (app_label, codename): permission.objects.get(content_type__app_label=app_label, codename=codename)
        for grants in GRANTS.values()
        for app_label, codename in grants
    }


def grant(apps, schema_editor):
    permissions = _permissions(apps, schema_editor)
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.add(*(permissions[key] for key in GRANTS[group.name]))


def revoke(apps, schema_editor):
    permissions = _permissions(apps, schema_editor)
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(*(permissions[key] for key in GRANTS[group.name]))


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0002_backfill_cursor"), ("payments", "0005_ops_groups")]

    operations = [migrations.RunPython(grant, revoke)]
