"""
The two groups of the ops console (README "Operating it"): "ops (read-only)" sees payments, refunds,
the timeline, the outbox and API clients; "payments admin" also holds every permission that moves
money or changes a payment's state. Give a staff user one of them instead of permissions one by one.

The lists are written out here, not imported: a migration must mean the same thing forever. Later
consoles (webhook events, reconciliation) add their permissions in migrations of their own.

Running it again changes nothing; reversing it deletes the two groups.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPS_READ_ONLY = "ops (read-only)"
PAYMENTS_ADMIN = "payments admin"
VIEW = [
    ("payments", "view_payment"),
    ("payments", "view_refund"),
    ("payments", "view_paymentevent"),
    ("payments", "view_apiclient"),
    ("payments", "view_apikey"),
    ("outbox", "view_outboxmessage"),
]
MONEY_MOVING = [
    ("payments", "capture_payment"),
    ("payments", "cancel_payment"),
    ("payments", "refund_payment"),
    ("payments", "retry_payment"),
    ("payments", "sync_payment"),
    ("payments", "resolve_payment"),
    ("outbox", "retry_outboxmessage"),
]
GROUPS = {OPS_READ_ONLY: VIEW, PAYMENTS_ADMIN: VIEW + MONEY_MOVING}


def groups_create(apps, schema_editor):
    # Permissions are created after all migrations (post_migrate); on a fresh database they do not
    # exist yet, so create those of the apps named here first (create_permissions skips existing ones).
    for app_label in {app_label for permissions in GROUPS.values() for app_label, _ in permissions}:
        app_config = apps.get_app_config(app_label)
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True  # create_permissions skips apps without models
        try:
            create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        finally:
            app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in permissions:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def groups_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("outbox", "0002_lifecycle"),
        ("payments", "0004_ops_permissions_and_reason"),
    ]

    operations = [migrations.RunPython(groups_create, groups_delete)]
