"""The admin and the API docs run under a Content-Security-Policy that allows no inline code."""

import re

import pytest

from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style[\s>]|\sstyle=", re.IGNORECASE)


def policy(response) -> dict[str, set[str]]:
    directives = (part.split() for part in response["Content-Security-Policy"].split(";") if part.strip())
    return {name: set(sources) for name, *sources in directives}


def assert_no_inline_code_allowed(response) -> None:
    csp = policy(response)
    assert csp["script-src"] == {"'self'"}
    assert csp["style-src"] == {"'self'"}
    assert csp["frame-ancestors"] == {"'none'"}
    assert csp["object-src"] == {"'none'"}


def test_admin_pages_allow_no_inline_code_and_contain_none(client, admin_client):
    payment = PaymentFactory()
    action_form = {"action": "refund_payments", "_selected_action": [payment.pk]}  # the ops console's reason page
    pages = [
        (client, "/admin/login/", None),
        (admin_client, "/admin/", None),
        (admin_client, "/admin/dashboard/", None),
        (admin_client, "/admin/payments/payment/", None),
        (admin_client, "/admin/payments/payment/", action_form),
        (admin_client, f"/admin/payments/payment/{payment.pk}/change/", None),
        (admin_client, "/admin/payments/apikey/add/", None),
    ]

    for http, page, form in pages:
        response = http.post(page, form) if form else http.get(page)

        assert response.status_code == 200, page
        assert_no_inline_code_allowed(response)
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html), page
        assert not INLINE_STYLE.search(html), page


def test_api_docs_run_under_the_policy_from_our_own_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert_no_inline_code_allowed(response)
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_STYLE.search(html)
    sources = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/") for source in sources), sources  # nothing from elsewhere
    for source in sources:
        assert client.get(source).status_code == 200, source
    start_up = client.get(next(source for source in sources if source.startswith("/api/docs/")))
    assert start_up["Content-Type"] == "application/javascript"
    assert b"SwaggerUIBundle(" in start_up.content
    assert b'"validatorUrl": null' in start_up.content  # no badge fetched from validator.swagger.io
