"""Admin logins are locked out after repeated failures (django-axes), per username and address together."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.db.models import F

from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "staff-password"  # StaffUserFactory's


def log_in(client, username: str, password: str, **headers: str):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, **headers)


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail_until_locked(client, username: str, **headers: str) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, username, "wrong-password", **headers)


def test_the_right_password_is_refused_after_repeated_wrong_ones(client):
    user = StaffUserFactory()
    fail_until_locked(client, user.username)

    response = log_in(client, user.username, PASSWORD)

    assert response.status_code == 429
    assert not is_logged_in(client)


def test_fewer_failures_than_the_limit_do_not_lock_out(client):
    user = StaffUserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, user.username, "wrong-password")

    response = log_in(client, user.username, PASSWORD)

    assert response.status_code == 302
    assert is_logged_in(client)


def test_a_locked_out_login_works_again_after_the_cool_off(client):
    user = StaffUserFactory()
    fail_until_locked(client, user.username)
    # The cool-off passes: the recorded failures move that far into the past.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME)

    response = log_in(client, user.username, PASSWORD)

    assert response.status_code == 302
    assert is_logged_in(client)


def test_ops_can_lift_a_lockout_before_the_cool_off_ends(client):
    user = StaffUserFactory()
    fail_until_locked(client, user.username)

    call_command("axes_reset_username", user.username, verbosity=0)
    response = log_in(client, user.username, PASSWORD)

    assert response.status_code == 302
    assert is_logged_in(client)


def test_a_lockout_does_not_lock_out_another_user_at_the_same_address(client):
    attacked = StaffUserFactory()
    colleague = StaffUserFactory()
    fail_until_locked(client, attacked.username)

    response = log_in(client, colleague.username, PASSWORD)

    assert response.status_code == 302
    assert is_logged_in(client)


def test_a_lockout_does_not_lock_the_same_user_out_from_another_address(client):
    user = StaffUserFactory()
    fail_until_locked(client, user.username, REMOTE_ADDR="203.0.113.66")

    response = log_in(client, user.username, PASSWORD, REMOTE_ADDR="198.51.100.7")

    assert response.status_code == 302
    assert is_logged_in(client)


def test_a_forged_x_forwarded_for_does_not_escape_the_lockout(client):
    user = StaffUserFactory()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, user.username, "wrong-password", HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}")

    response = log_in(client, user.username, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200")

    assert response.status_code == 429
    assert not is_logged_in(client)


def test_behind_a_trusted_proxy_each_client_address_is_locked_out_on_its_own(client, settings):
    # What base.py sets for TRUSTED_PROXY_COUNT=1: one proxy that appends the client to X-Forwarded-For.
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
    settings.AXES_IPWARE_PROXY_COUNT = 0
    settings.AXES_IPWARE_PROXY_ORDER = "left-most"
    user = StaffUserFactory()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    fail_until_locked(client, user.username, HTTP_X_FORWARDED_FOR="203.0.113.66", **proxy)
    for attempt in range(settings.AXES_FAILURE_LIMIT):  # forged entries before the one the proxy appended
        forged = f"192.0.2.{attempt}, 203.0.113.77"
        log_in(client, user.username, "wrong-password", HTTP_X_FORWARDED_FOR=forged, **proxy)

    attacker = log_in(client, user.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.66", **proxy)
    forger = log_in(client, user.username, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.77", **proxy)
    owner = log_in(client, user.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy)

    assert attacker.status_code == 429
    assert forger.status_code == 429  # every forged header counts against one address, never a fresh one
    assert owner.status_code == 302
    assert is_logged_in(client)


def test_a_failed_login_logs_no_client_controlled_value(client, caplog):
    caplog.set_level("INFO", logger="axes")

    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "x\nFORGED login line", "wrong-password", HTTP_USER_AGENT="ua\nFORGED agent line")

    assert "AXES: Locking out" in caplog.text
    assert "FORGED" not in caplog.text


def test_an_ipv6_client_cannot_escape_the_lockout_by_moving_within_its_64(client):
    user = StaffUserFactory()
    for host in range(1, 4 * settings.AXES_FAILURE_LIMIT + 1):
        log_in(client, user.username, "wrong-password", REMOTE_ADDR=f"2001:db8:1:2::{host:x}")

    response = log_in(client, user.username, PASSWORD, REMOTE_ADDR="2001:db8:1:2::ffff")
    elsewhere = log_in(client, user.username, PASSWORD, REMOTE_ADDR="2001:db8:1:3::1")

    assert response.status_code == 429
    assert elsewhere.status_code == 302  # another /64 is another subscriber
