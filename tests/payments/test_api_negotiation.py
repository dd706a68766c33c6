"""The API's views skip DRF's content negotiation only where its answer is fixed (issue 11), and answer as it does."""

import pytest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from payments.api import views
from payments.api.parsers import SafeJSONParser

VIEWS = [
    views.PaymentListCreateApi,
    views.PaymentDetailApi,
    views.PaymentCaptureApi,
    views.PaymentCancelApi,
    views.RefundCreateApi,
    views.RefundDetailApi,
]
ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "application/json;q=0.5",
    "application/*",
    "*/*;q=0.8",
    "text/html",
    "application/xml",
    "text/html, application/json",
    "",
    "application/json" + ", text/plain" * 100,
]
QUERIES = ["", "limit=5", "format=json", "format=xml", "format="]


def negotiated(view_class, perform, accept, query):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    view = view_class()
    view.format_kwarg = None
    request = view.initialize_request(APIRequestFactory().get(f"/api/v1/payments?{query}", **headers))
    try:
        renderer, media_type = perform(view, request)
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return type(renderer), media_type


@pytest.mark.parametrize("view_class", VIEWS)
@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", QUERIES)
def test_negotiation_answers_as_drfs(view_class, accept, query):
    ours = negotiated(view_class, view_class.perform_content_negotiation, accept, query)

    assert ours == negotiated(view_class, APIView.perform_content_negotiation, accept, query)


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_the_usual_accept_headers_are_not_negotiated(accept):
    view = views.PaymentListCreateApi()
    view.format_kwarg = None
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = view.initialize_request(APIRequestFactory().post("/api/v1/payments", **headers))

    assert view.perform_content_negotiation(request)[0] is views.JSON_RENDERER


@pytest.mark.parametrize("view_class", VIEWS)
def test_each_answers_headers_are_drfs(view_class):
    view = view_class()

    headers = view.default_response_headers
    headers["Vary"] = "changed by a request"

    assert view.default_response_headers == APIView.default_response_headers.fget(view)
    assert "Vary" not in view.default_response_headers


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/*",
        "*/*",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "application/json" + " " * 300,
    ],
)
@pytest.mark.parametrize("parser_classes", [[SafeJSONParser], [FormParser, SafeJSONParser], []])
def test_the_parser_is_drfs_choice(content_type, parser_classes):
    request = Request(APIRequestFactory().generic("POST", "/api/v1/payments", b"{}", content_type=content_type))
    parsers = [parser() for parser in parser_classes]

    ours = views.JsonNegotiation().select_parser(request, parsers)

    assert ours is DefaultContentNegotiation().select_parser(request, parsers)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/payments?format=xml", "/api/v1/payments/pay_x?format=api"])
def test_an_unknown_format_is_a_404_named_resource_missing_with_a_message(api, path):
    # DRF's negotiation raises Django's Http404 for a ?format= no renderer has: it answered code "error"
    # and an empty message.
    response = api.get(path)

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "resource_missing"
    assert error["type"] == "invalid_request_error"
    assert error["message"]
