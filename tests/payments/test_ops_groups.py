"""The ops groups of the data migration: what each may do, and the migration's own behaviour."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.db import connection

from payments.models import Payment
from tests.fixtures.ops import OPS_READ_ONLY, PAYMENTS_ADMIN, ops_group_grants, ops_groups_migration

pytestmark = pytest.mark.django_db
VIEW = {
    "payments.view_payment",
    "payments.view_refund",
    "payments.view_paymentevent",
    "payments.view_apiclient",
    "payments.view_apikey",
    "outbox.view_outboxmessage",
    "payments.view_jobrun",  # migration 0007
    "payments.view_reconciliationmismatch",  # migration 0010
    "webhooks.view_webhookevent",  # webhooks 0003
}
MONEY_MOVING = {
    "payments.capture_payment",
    "payments.cancel_payment",
    "payments.refund_payment",
    "payments.retry_payment",
    "payments.sync_payment",
    "payments.resolve_payment",
    "outbox.retry_outboxmessage",
    "webhooks.replay_webhookevent",  # webhooks 0003
}


def permissions_of(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list("content_type__app_label", "codename")
    }


def run(operation) -> None:
    with connection.schema_editor() as schema_editor:
        operation(apps, schema_editor)


def test_ops_read_only_may_view_and_move_no_money(ops_groups):
    assert permissions_of(OPS_READ_ONLY) == VIEW


def test_payments_admin_holds_every_money_moving_permission_and_view(ops_groups):
    assert permissions_of(PAYMENTS_ADMIN) == VIEW | MONEY_MOVING


def test_every_action_permission_declared_on_payments_is_given_to_payments_admin(ops_groups):
    declared = {f"payments.{codename}" for codename, _ in Payment._meta.permissions}

    assert declared <= permissions_of(PAYMENTS_ADMIN)
    assert not declared & permissions_of(OPS_READ_ONLY)


def test_the_migration_run_again_changes_nothing(ops_groups):
    before = {name: permissions_of(name) for name in (OPS_READ_ONLY, PAYMENTS_ADMIN)}

    run(ops_groups_migration.groups_create)

    assert Group.objects.filter(name__in=before).count() == 2
    assert {name: permissions_of(name) for name in before} == before


def test_the_migration_reversed_deletes_the_groups_and_applied_again_restores_them(ops_groups):
    run(ops_groups_migration.groups_delete)
    deleted = Group.objects.filter(name__in=[OPS_READ_ONLY, PAYMENTS_ADMIN]).exists()
    run(ops_groups_migration.groups_create)
    for grant in ops_group_grants:  # the later migrations, applied forward again
        run(grant)

    assert not deleted
    assert permissions_of(PAYMENTS_ADMIN) == VIEW | MONEY_MOVING
