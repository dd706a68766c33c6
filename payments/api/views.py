"""The payments API: thin views that parse, call one service, and render (STYLE §1, §6)."""

from __future__ import annotations

import functools

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from payments import selectors
from payments.api.serializers import (
    PaymentCancelInputSerializer,
    PaymentCaptureInputSerializer,
    PaymentCreateInputSerializer,
    PaymentListInputSerializer,
    PaymentListOutputSerializer,
    PaymentOutputSerializer,
    RefundCreateInputSerializer,
    RefundOutputSerializer,
    error_responses,
    payment_representation,
)
from payments.idempotency import KEY_PATTERN, MAX_KEY_LENGTH, idempotent_response
from payments.services.payments import Actor, payment_cancel_request, payment_capture_request, payment_create
from payments.services.refunds import refund_create

IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_PATTERN}
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    IDEMPOTENCY_KEY_SCHEMA,
    OpenApiParameter.HEADER,
    description=f"Up to {MAX_KEY_LENGTH} printable ASCII characters, remembered 24 hours per API client. A retry "
    "with the same key and body replays the first response (header Idempotent-Replayed: true).",
)
REQUIRED_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    IDEMPOTENCY_KEY_SCHEMA,
    OpenApiParameter.HEADER,
    required=True,
    description=IDEMPOTENCY_HEADER.description,
)


def _actor(request: Request) -> Actor:
    return Actor(source="api", name=f"api_key:{request.auth.prefix}")


def _validated(serializer_class, data) -> dict:
    return serializer_class.validated(data)


JSON_RENDERER = JSONRenderer()  # keeps no state between requests
# The Accept headers that DRF's negotiation answers, with the JSON renderer alone, by this media type.
# Any other (a list, parameters, another type: maybe a 406) is negotiated by DRF.
JSON_ACCEPTS = {None: "application/json", "*/*": "application/json", "application/json": "application/json"}


class JsonNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with the parser for a body sent as plain application/json picked without parsing types."""

    def select_parser(self, request: Request, parsers):
        # DRF returns the first parser whose media type matches: the first one, if it is this very type.
        if parsers and parsers[0].media_type == "application/json" == request.content_type:
            return parsers[0]
        return super().select_parser(request, parsers)


class JsonApi(APIView):
    """The payments API's views: JSON only, so the usual Accept headers need no negotiation (issue 11)."""

    content_negotiation_class = JsonNegotiation

    def perform_content_negotiation(self, request: Request, force: bool = False):
        http = request._request
        media_type = JSON_ACCEPTS.get(http.META.get("HTTP_ACCEPT"))
        if (
            media_type is None
            or self.renderer_classes != [JSONRenderer]
            or getattr(self, "format_kwarg", None)
            or (http.META.get("QUERY_STRING") and http.GET.get(api_settings.URL_FORMAT_OVERRIDE))
        ):
            return super().perform_content_negotiation(request, force)
        return JSON_RENDERER, media_type

    @property
    def default_response_headers(self) -> dict:
        return dict(_default_response_headers(type(self)))


@functools.cache
def _default_response_headers(view_class: type[APIView]) -> dict:
    """DRF's headers for every answer of a view (its Allow list): the same for every request."""
    return APIView.default_response_headers.fget(view_class())


class PaymentListCreateApi(JsonApi):
    @extend_schema(
        operation_id="payments_create",
        request=PaymentCreateInputSerializer,
        responses={202: PaymentOutputSerializer, **error_responses(400, 401, 409, 411, 413, 415, 422, 429)},
        parameters=[REQUIRED_IDEMPOTENCY_HEADER],
        description="Store a payment (status pending); a worker sends it to the provider.",
    )
    def post(self, request: Request) -> Response:
        def create():
            data = _validated(PaymentCreateInputSerializer, request.data)
            payment = payment_create(client=client, actor=_actor(request), now=now, **data)
            return 202, payment_representation(payment)

        client, now = request.user, timezone.now()
        return idempotent_response(request=request, client=client, required=True, handler=create, now=now)

    @extend_schema(
        operation_id="payments_list",
        parameters=[PaymentListInputSerializer],  # the bounds the server checks, from the same fields
        responses={200: PaymentListOutputSerializer, **error_responses(400, 401, 404, 429)},
    )
    def get(self, request: Request) -> Response:
        filters = _validated(PaymentListInputSerializer, request.query_params.dict())
        payments, has_more = selectors.payment_list(
            client=request.user,
            status=filters.get("status"),
            created_gte=filters.get("created_gte"),
            created_lte=filters.get("created_lte"),
            starting_after=filters.get("starting_after"),
            limit=filters["limit"],
        )
        return Response(
            {
                "object": "list",
                "data": [payment_representation(payment) for payment in payments],
                "has_more": has_more,
                "url": request.path,
            }
        )


class PaymentDetailApi(JsonApi):
    @extend_schema(
        operation_id="payments_retrieve", responses={200: PaymentOutputSerializer, **error_responses(401, 404, 429)}
    )
    def get(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(client=request.user, payment_id=payment_id)
        return Response(payment_representation(payment))


class PaymentCaptureApi(JsonApi):
    @extend_schema(
        operation_id="payments_capture",
        request=PaymentCaptureInputSerializer,
        responses={202: PaymentOutputSerializer, **error_responses(400, 401, 404, 409, 411, 413, 415, 422, 429)},
        parameters=[IDEMPOTENCY_HEADER],
        description="Ask for an authorized (requires_capture) payment to be captured, fully or partly.",
    )
    def post(self, request: Request, payment_id: str) -> Response:
        def capture():
            data = _validated(PaymentCaptureInputSerializer, request.data)
            payment = payment_capture_request(
                client=client,
                payment_id=payment_id,
                amount=data.get("amount"),
                actor=_actor(request),
                now=now,
            )
            return 202, payment_representation(payment)

        client, now = request.user, timezone.now()
        return idempotent_response(request=request, client=client, required=False, handler=capture, now=now)


class PaymentCancelApi(JsonApi):
    @extend_schema(
        operation_id="payments_cancel",
        request=PaymentCancelInputSerializer,
        responses={202: PaymentOutputSerializer, **error_responses(400, 401, 404, 409, 411, 413, 415, 422, 429)},
        parameters=[IDEMPOTENCY_HEADER],
        description="Cancel a payment that has not succeeded: at once if it was never sent, else at the provider.",
    )
    def post(self, request: Request, payment_id: str) -> Response:
        def cancel():
            _validated(PaymentCancelInputSerializer, request.data)
            payment = payment_cancel_request(client=client, payment_id=payment_id, actor=_actor(request), now=now)
            return 202, payment_representation(payment)

        client, now = request.user, timezone.now()
        return idempotent_response(request=request, client=client, required=False, handler=cancel, now=now)


class RefundCreateApi(JsonApi):
    @extend_schema(
        operation_id="refunds_create",
        request=RefundCreateInputSerializer,
        responses={202: RefundOutputSerializer, **error_responses(400, 401, 404, 409, 411, 413, 415, 422, 429)},
        parameters=[REQUIRED_IDEMPOTENCY_HEADER],
        description="Refund a succeeded payment, fully (default: what is left) or partly.",
    )
    def post(self, request: Request, payment_id: str) -> Response:
        def refund():
            data = _validated(RefundCreateInputSerializer, request.data)
            created = refund_create(
                client=client,
                payment_id=payment_id,
                amount=data.get("amount"),
                reason=data.get("reason", ""),
                actor=_actor(request),
                now=now,
            )
            return 202, RefundOutputSerializer(created).data

        client, now = request.user, timezone.now()
        return idempotent_response(request=request, client=client, required=True, handler=refund, now=now)


class RefundDetailApi(JsonApi):
    @extend_schema(
        operation_id="refunds_retrieve", responses={200: RefundOutputSerializer, **error_responses(401, 404, 429)}
    )
    def get(self, request: Request, refund_id: str) -> Response:
        refund = selectors.refund_get(client=request.user, refund_id=refund_id)
        return Response(RefundOutputSerializer(refund).data)
