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


@pytest.mark.parametrize(
    ("query", "charset"),
    [
        ("", None),
        ("a=1&b=two", None),
        ("a=%00", None),
        ("%00=a", None),
        ("a=%2500", None),  # the text "%00", no NUL
        ("a=%C0%80", None),  # an overlong NUL: not UTF-8, decodes to U+FFFD
        ("a=%2BAAA-", "utf-7"),  # UTF-7's NUL
        ("a=%00%00", "utf-16"),  # read as UTF-16 code units whole: no "=" and no NUL left
        ("a=%00", "iso-8859-1"),
        ("a=b", "utf-16"),
    ],
)
def test_a_nul_in_the_query_is_refused_exactly_when_the_parsed_query_holds_one(rf, query, charset):
    from config.middleware import RefuseUnreadableRequestMiddleware

    content_type = f"text/plain; charset={charset}" if charset else "text/plain"
    request = rf.get(f"/api/v1/payments?{query}", CONTENT_TYPE=content_type)
    parsed = rf.get(f"/api/v1/payments?{query}", CONTENT_TYPE=content_type)
    assert request.encoding == charset
    holds_nul = any("\x00" in key or "\x00" in value for key, values in parsed.GET.lists() for value in values)

    response = RefuseUnreadableRequestMiddleware(lambda request: "passed")(request)

    assert (response != "passed") == holds_nul
    assert holds_nul == (query in ("a=%00", "%00=a", "a=%2BAAA-"))
