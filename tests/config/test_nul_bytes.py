import pytest

from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/admin/payments/payment/?status__exact=%00",
        "/admin/payments/payment/?currency__exact=eur%00",
        "/admin/payments/refund/?status__exact=%00",
        "/admin/payments/apikey/?id__gt=%00",
        "/admin/payments/apikey/%00/change/",
        "/admin/autocomplete/?app_label=payments&model_name=payment&field_name=client&term=%00",
    ],
)
def test_a_nul_byte_in_an_admin_url_is_a_400_not_a_database_error(client, url):
    client.force_login(StaffUserFactory(is_superuser=True))

    response = client.get(url)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_invalid"


def test_a_nul_byte_in_an_api_query_is_a_400_in_the_api_error_shape(api):
    response = api.get("/api/v1/payments?starting_after=pay_%00")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
