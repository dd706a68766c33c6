"""Every API error in one shape, Stripe's: {"error": {"type", "code", "message", "param"}}."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.db import database_unavailable
from payments.errors import AmountInvalidForCurrency, AmountTooSmall, PaymentsError

logger = logging.getLogger(__name__)

# DRF's own exceptions, named as Stripe names them.
_DRF_CODES = {
    exceptions.ParseError: ("invalid_request_error", "invalid_json"),
    exceptions.AuthenticationFailed: ("authentication_error", "invalid_api_key"),
    exceptions.NotAuthenticated: ("authentication_error", "api_key_required"),
    exceptions.PermissionDenied: ("invalid_request_error", "permission_denied"),
    exceptions.NotFound: ("invalid_request_error", "resource_missing"),
    exceptions.MethodNotAllowed: ("invalid_request_error", "method_not_allowed"),
    exceptions.NotAcceptable: ("invalid_request_error", "not_acceptable"),
    exceptions.UnsupportedMediaType: ("invalid_request_error", "unsupported_media_type"),
    exceptions.Throttled: ("rate_limit_error", "rate_limited"),
}


# A lost database connection is retried by the client after this; the next request reconnects (config/db.py).
DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = 1

# Domain rules checked during validation (before anything is stored) keep their own, documented codes.
_DOMAIN_VALIDATION_CODES = frozenset([AmountTooSmall.code, AmountInvalidForCurrency.code])


def error_payload(*, type: str, code: str, message: str, param: str | None = None) -> dict:
    return {"error": {"type": type, "code": code, "message": message, "param": param}}


def payments_error_payload(exc: PaymentsError) -> dict:
    return error_payload(type=exc.type, code=exc.code, message=exc.message, param=exc.param)


def _first_field_error(detail, path: str = "") -> tuple[str | None, exceptions.ErrorDetail | str]:
    """Walk DRF's nested error detail to the first leaf: its dotted/bracketed param and message."""
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        if key == "non_field_errors":
            return _first_field_error(value, path)
        return _first_field_error(value, f"{path}[{key}]" if path else str(key))
    if isinstance(detail, list) and detail:
        return _first_field_error(detail[0], path)
    return (path or None), detail


def validation_error_payload(exc: exceptions.ValidationError) -> dict:
    param, leaf = _first_field_error(exc.detail)
    drf_code = getattr(leaf, "code", "invalid")
    code = "parameter_missing" if drf_code in ("required", "null", "blank") else "parameter_invalid"
    if drf_code == "unknown_field":
        code = "parameter_unknown"
    if drf_code in _DOMAIN_VALIDATION_CODES:
        code = drf_code
    message = str(leaf) if param is None else f"{param}: {leaf}"
    return error_payload(type="invalid_request_error", code=code, message=message, param=param)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Render PaymentsError and DRF exceptions in the one error shape, a lost database connection as a 503 to
    retry; anything else is a logged 500."""
    if isinstance(exc, RequestDataTooBig):
        payload = error_payload(
            type="invalid_request_error",
            code="request_too_large",
            message="The request body is larger than this API accepts.",
        )
        return Response(payload, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, PaymentsError):
        response = Response(payments_error_payload(exc), status=exc.http_status)
        if getattr(exc, "retry_after_seconds", None):
            response["Retry-After"] = str(exc.retry_after_seconds)
        return response
    if database_unavailable(exc):
        logger.warning("database unavailable, answered 503: %s", type(exc.__cause__ or exc).__name__)
        payload = error_payload(
            type="api_error",
            code="service_unavailable",
            message="The service is briefly unavailable; nothing was stored. Retry shortly.",
        )
        response = Response(payload, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS)
        return response
    # Django's own (DRF's negotiation raises Http404 for an unknown ?format=), as DRF's handler converts
    # them, so they are named as DRF's are: otherwise code "error" with an empty message.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unanticipated: Django logs it and answers 500
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_error_payload(exc)
        return response
    type_, code = next(
        (pair for cls, pair in _DRF_CODES.items() if isinstance(exc, cls)),
        (
            "api_error" if response.status_code >= status.HTTP_500_INTERNAL_SERVER_ERROR else "invalid_request_error",
            getattr(exc, "default_code", "error"),
        ),
    )
    if isinstance(exc, exceptions.AuthenticationFailed) and exc.default_code != "authentication_failed":
        code = exc.default_code  # a named reason, e.g. api_key_revoked
    response.data = error_payload(type=type_, code=code, message=str(getattr(exc, "detail", exc)))
    return response


def _api_or_django(request, django_view, *, status_code: int, code: str, message: str, **kwargs):
    if request.path.startswith("/api/"):
        type_ = "api_error" if status_code >= status.HTTP_500_INTERNAL_SERVER_ERROR else "invalid_request_error"
        return JsonResponse(error_payload(type=type_, code=code, message=message), status=status_code)
    return django_view(request, **kwargs)


def not_found(request, exception=None):
    """handler404: JSON in the error shape under /api/, Django's page elsewhere."""
    from django.views.defaults import page_not_found

    return _api_or_django(
        request,
        page_not_found,
        status_code=404,
        code="resource_missing",
        message=f"Unrecognized request URL ({request.method}: {request.path}).",
        exception=exception,
    )


def server_error(request):
    """handler500: JSON in the error shape under /api/ (the error itself is logged by Django)."""
    from django.views.defaults import server_error as django_server_error

    return _api_or_django(
        request,
        django_server_error,
        status_code=500,
        code="internal_error",
        message="An unexpected error occurred; it has been logged.",
    )
