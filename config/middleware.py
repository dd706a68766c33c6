"""Site-wide request hygiene that no view should have to repeat."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse


class RefuseNulMiddleware:
    """Answer 400 to a NUL byte in the path or a query parameter, before any view or query sees it.

    PostgreSQL cannot store or compare NUL in text, so a `?status__exact=%00` on an admin list (or a
    `%00` object id in an admin URL) reached the database and came back as a 500. Nothing legitimate
    sends one.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any("\x00" in key or "\x00" in value for key, value in _query_items(request)):
            payload = {
                "type": "invalid_request_error",
                "code": "parameter_invalid",
                "message": "NUL bytes are not allowed.",
            }
            return JsonResponse({"error": {**payload, "param": None}}, status=400)
        return self.get_response(request)


def _query_items(request: HttpRequest):
    for key, values in request.GET.lists():
        for value in values:
            yield key, value
