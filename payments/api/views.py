"""The payments API: thin views that parse, call one service, and render (STYLE §1, §6)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
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


class PaymentListCreateApi(APIView):
    @extend_schema(
        operation_id="payments_create",
        request=PaymentCreateInputSerializer,
        responses={202: PaymentOutputSerializer, **error_responses(400, 401, 409, 413, 415, 422, 429)},
        parameters=[REQUIRED_IDEMPOTENCY_HEADER],
        description="Store a payment (status pending); a worker sends it to the provider.",
    )
    def post(self, request: Request) -> Response:
        def create():
            data = _validated(PaymentCreateInputSerializer, request.data)
            payment = payment_create(client=request.user, actor=_actor(request), now=now, **data)
            return 202, PaymentOutputSerializer(payment).data

        now = timezone.now()
        return idempotent_response(request=request, client=request.user, required=True, handler=create, now=now)

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
                "data": PaymentOutputSerializer(payments, many=True).data,
                "has_more": has_more,
                "url": request.path,
            }
        )


class PaymentDetailApi(APIView):
    @extend_schema(
        operation_id="payments_retrieve", responses={200: PaymentOutputSerializer, **error_responses(401, 404, 429)}
    )
    def get(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(client=request.user, payment_id=payment_id)
        return Response(PaymentOutputSerializer(payment).data)


class PaymentCaptureApi(APIView):
    @extend_schema(
        operation_id="payments_capture",
        request=PaymentCaptureInputSerializer,
        responses={202: PaymentOutputSerializer, **error_responses(400, 401, 404, 409, 413, 415, 422, 429)},
        parameters=[IDEMPOTENCY_HEADER],
        description="Ask for an authorized (requires_capture) payment to be captured, fully or partly.",
    )
    def post(self, request: Request, payment_id: str) -> Response:
        def capture():
            data = _validated(PaymentCaptureInputSerializer, request.data)
            payment = payment_capture_request(
                client=request.user,
                payment_id=payment_id,
                amount=data.get("amount"),
                actor=_actor(request),
                now=now,
            )
            return 202, PaymentOutputSerializer(payment).data

        now = timezone.now()
        return idempotent_response(request=request, client=request.user, required=False, handler=capture, now=now)


class PaymentCancelApi(APIView):
    @extend_schema(
        operation_id="payments_cancel",
        request=PaymentCancelInputSerializer,
        responses={202: PaymentOutputSerializer, **error_responses(400, 401, 404, 409, 413, 415, 422, 429)},
        parameters=[IDEMPOTENCY_HEADER],
        description="Cancel a payment that has not succeeded: at once if it was never sent, else at the provider.",
    )
    def post(self, request: Request, payment_id: str) -> Response:
        def cancel():
            _validated(PaymentCancelInputSerializer, request.data)
            payment = payment_cancel_request(client=request.user, payment_id=payment_id, actor=_actor(request), now=now)
            return 202, PaymentOutputSerializer(payment).data

        now = timezone.now()
        return idempotent_response(request=request, client=request.user, required=False, handler=cancel, now=now)


class RefundCreateApi(APIView):
    @extend_schema(
        operation_id="refunds_create",
        request=RefundCreateInputSerializer,
        responses={202: RefundOutputSerializer, **error_responses(400, 401, 404, 409, 413, 415, 422, 429)},
        parameters=[REQUIRED_IDEMPOTENCY_HEADER],
        description="Refund a succeeded payment, fully (default: what is left) or partly.",
    )
    def post(self, request: Request, payment_id: str) -> Response:
        def refund():
            data = _validated(RefundCreateInputSerializer, request.data)
            created = refund_create(
                client=request.user,
                payment_id=payment_id,
                amount=data.get("amount"),
                reason=data.get("reason", ""),
                actor=_actor(request),
                now=now,
            )
            return 202, RefundOutputSerializer(created).data

        now = timezone.now()
        return idempotent_response(request=request, client=request.user, required=True, handler=refund, now=now)


class RefundDetailApi(APIView):
    @extend_schema(
        operation_id="refunds_retrieve", responses={200: RefundOutputSerializer, **error_responses(401, 404, 429)}
    )
    def get(self, request: Request, refund_id: str) -> Response:
        refund = selectors.refund_get(client=request.user, refund_id=refund_id)
        return Response(RefundOutputSerializer(refund).data)
