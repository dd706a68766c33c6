"""
An admin action POSTed with a selected id that cannot be a key of its model is a 400, not a 500.

Django filters `pk__in` with the checkboxes' values as sent: `abc` or `1.5` for an integer key raised
ValueError, and a NUL byte (the request body is not refused by RefuseUnreadableRequestMiddleware, only URLs) reached
PostgreSQL; both were 500s on every changelist with an action, ours and django.contrib.auth's alike.
"""

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.urls import reverse

pytestmark = pytest.mark.django_db


def admins_with_actions(request_factory, user):
    request = request_factory.get("/admin/")
    request.user = user
    return [
        (model, list(model_admin.get_actions(request)))
        for model, model_admin in admin.site._registry.items()
        if model_admin.get_actions(request)
    ]


def test_the_admin_site_has_actions_to_check(rf, admin_user):
    assert len(admins_with_actions(rf, admin_user)) >= 3, "too few changelists with actions: this test checks little"


@pytest.mark.parametrize("selected", ["abc", "1.5", "a\x00", ""], ids=["letters", "fraction", "nul", "empty"])
def test_an_action_on_a_selected_id_that_cannot_be_a_key_is_a_400(admin_client, admin_user, rf, selected):
    ran = []
    for model, actions in admins_with_actions(rf, admin_user):
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for action in actions:
            response = admin_client.post(
                url,
                {"action": action, helpers.ACTION_CHECKBOX_NAME: ["1", selected], "index": "0", "reason": "x"},
            )
            # Any text is a key of a text primary key (an API key's id): only a NUL byte cannot be.
            can_be_a_key = model._meta.pk.get_internal_type() == "CharField" and "\x00" not in selected
            ran.append((url, action, response.status_code, can_be_a_key))

    assert [entry for entry in ran if entry[2] >= 500] == []
    assert [entry for entry in ran if entry[2] != 400 and not entry[3]] == []


def test_an_action_on_well_formed_ids_still_runs(admin_client):
    from tests.factories import PaymentFactory

    payment = PaymentFactory()
    url = reverse("admin:payments_payment_changelist")

    response = admin_client.post(url, {"action": "retry_now", helpers.ACTION_CHECKBOX_NAME: [str(payment.pk)]})

    assert response.status_code == 200  # the reason page for the chosen payment
    assert payment.public_id in response.content.decode()
