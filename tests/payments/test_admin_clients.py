import pytest

from payments.models import ApiClient, ApiKey, IdempotencyKey
from tests.factories import ApiClientFactory, api_key_create

pytestmark = pytest.mark.django_db


def test_client_key_and_idempotency_key_pages_render_for_ops(admin_client, api):
    api_key, _ = api_key_create()
    api.post(
        "/api/v1/payments",
        {"amount": 500, "currency": "eur", "payment_method": "pm_card_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="admin-view",
    )
    stored = IdempotencyKey.objects.get()

    pages = [
        "/admin/payments/apiclient/",
        f"/admin/payments/apiclient/{api_key.client.pk}/change/",
        "/admin/payments/apikey/",
        f"/admin/payments/apikey/{api_key.pk}/change/",
        "/admin/payments/idempotencykey/?q=admin-view",
        f"/admin/payments/idempotencykey/{stored.pk}/change/",
    ]

    for page in pages:
        assert admin_client.get(page).status_code == 200, page
    assert b"&quot;status&quot;:&quot;pending&quot;" in admin_client.get(pages[-1]).content


def test_a_key_created_in_the_admin_is_shown_once_and_stored_hashed(admin_client):
    client = ApiClientFactory(name="admin-made")

    response = admin_client.post("/admin/payments/apikey/add/", {"name": "pos", "client": client.pk}, follow=True)

    assert response.status_code == 200
    api_key = ApiKey.objects.get(client=client)
    message = next(str(m) for m in response.context["messages"])
    key = next(word.rstrip(".") for word in message.split() if word.startswith(api_key.prefix + "."))
    assert ApiKey.objects.is_valid(key)
    assert key not in api_key.hashed_key


def test_idempotency_keys_cannot_be_added_changed_or_deleted_in_the_admin(admin_client):
    assert admin_client.get("/admin/payments/idempotencykey/add/").status_code == 403


def test_api_clients_cannot_be_deleted_in_the_admin(admin_client):
    client = ApiClientFactory()

    response = admin_client.post(f"/admin/payments/apiclient/{client.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert ApiClient.objects.filter(pk=client.pk).exists()


def test_api_keys_have_one_place_in_the_admin(admin_client):
    index = admin_client.get("/admin/").content.decode()

    assert index.count(">API keys</a>") == 1
    assert 'href="/admin/payments/apikey/"' in index
    assert admin_client.get("/admin/rest_framework_api_key/apikey/").status_code == 404
