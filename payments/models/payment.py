from datetime import datetime

import django_fsm as fsm
from django.db import models
from django.db.models import F, Q

from payments.models.base import BaseModel, fsm_state_fields, new_payment_id, new_refund_id
from payments.models.clients import ApiClient

# Bounds like Stripe's: https://docs.stripe.com/api/metadata and amount limits (8 digits in most
# currencies; 99999999 minor units is comfortably above any card payment).
MAX_AMOUNT = 99_999_999
DESCRIPTION_MAX_LENGTH = 1000
CUSTOMER_REFERENCE_MAX_LENGTH = 255
# An operator's reason for an admin action: a sentence or two for the timeline, not a case file.
REASON_MAX_LENGTH = 500
# Why a job flagged a payment for ops: one line a job writes, not an operator's case notes.
FLAG_REASON_MAX_LENGTH = 200


# The status choices live at module level so that each model's Meta, whose body cannot see names
# of the class around it, builds its CHECK constraint from them: one home for every status list.
class PaymentStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"  # stored, not yet sent
    PROCESSING = "PROCESSING", "Processing"  # sent, outcome not yet known
    REQUIRES_ACTION = "REQUIRES_ACTION", "Requires action"
    REQUIRES_CAPTURE = "REQUIRES_CAPTURE", "Requires capture"
    CAPTURE_REQUESTED = "CAPTURE_REQUESTED", "Capture requested"
    CANCEL_REQUESTED = "CANCEL_REQUESTED", "Cancel requested"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    CANCELED = "CANCELED", "Canceled"


class RefundStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"


# Every state a provider outcome (success, cancellation) may still arrive in.
NOT_FINAL_STATUSES = [
    PaymentStatus.PENDING,
    PaymentStatus.PROCESSING,
    PaymentStatus.REQUIRES_ACTION,
    PaymentStatus.REQUIRES_CAPTURE,
    PaymentStatus.CAPTURE_REQUESTED,
    PaymentStatus.CANCEL_REQUESTED,
]


class Payment(fsm.ConcurrentTransitionMixin, BaseModel):
    """A payment a client asked for: stored as PENDING before any provider call (write before you call)."""

    Status = PaymentStatus

    class CaptureMethod(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic"
        MANUAL = "manual", "Manual"

    # Internal states a client does not need: a capture or cancel asked for and not yet settled
    # by the provider is, to the client, an outcome not yet known.
    PUBLIC_STATUS = {
        Status.PENDING: "pending",
        Status.PROCESSING: "processing",
        Status.REQUIRES_ACTION: "requires_action",
        Status.REQUIRES_CAPTURE: "requires_capture",
        Status.CAPTURE_REQUESTED: "processing",
        Status.CANCEL_REQUESTED: "processing",
        Status.SUCCEEDED: "succeeded",
        Status.FAILED: "failed",
        Status.CANCELED: "canceled",
    }

    NOT_FINAL = NOT_FINAL_STATUSES

    public_id = models.CharField(max_length=40, unique=True, default=new_payment_id, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="payments")
    status = fsm.FSMField(choices=Status.choices, default=Status.PENDING, protected=True, db_index=True)
    amount = models.BigIntegerField()  # minor units, as Stripe sends them
    currency = models.CharField(max_length=3)
    amount_capturable = models.BigIntegerField(default=0)
    amount_received = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)  # pending + succeeded refunds, as Stripe counts
    amount_to_capture = models.BigIntegerField(null=True, blank=True)
    capture_method = models.CharField(max_length=16, choices=CaptureMethod.choices, default=CaptureMethod.AUTOMATIC)
    payment_method = models.CharField(max_length=255)
    description = models.TextField(max_length=DESCRIPTION_MAX_LENGTH, blank=True, default="")
    customer_reference = models.CharField(max_length=CUSTOMER_REFERENCE_MAX_LENGTH, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    provider = models.CharField(max_length=32, default="stripe")
    # NULL until the provider answers; unique among the non-null ones.
    provider_payment_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    next_action = models.JSONField(null=True, blank=True)
    failure_code = models.CharField(max_length=100, blank=True, default="")
    failure_message = models.TextField(blank=True, default="")
    succeeded_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    # Set when something needs a person's eyes (a dispute, a provider state that contradicts ours, an
    # outcome the provider cannot tell); the reasons, each with its details, are on the timeline.
    flagged_at = models.DateTimeField(null=True, blank=True)
    flag_reason = models.CharField(max_length=FLAG_REASON_MAX_LENGTH, blank=True, default="")
    # The janitor's look-ups back off per payment: when it may ask the provider again, and how often it has.
    next_check_at = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        # Moving money is never implied by `view` or `change`: each admin action that moves money
        # checks its own permission, granted only to the ops staff who may do it.
        permissions = [
            ("capture_payment", "Can capture payments"),
            ("cancel_payment", "Can cancel payments"),
            ("refund_payment", "Can refund payments"),
            ("retry_payment", "Can make a payment's queued provider calls due now"),
            ("sync_payment", "Can re-sync payments from the provider"),
            ("resolve_payment", "Can resolve payments by hand"),
        ]
        indexes = [
            # The API's list: a client's payments newest first, `created` bounds as a range of it.
            models.Index(fields=["client", "-created_at", "-id"], name="payment_client_created"),
            # The same list filtered to a status still in flight: those few rows, in the list's order.
            models.Index(
                fields=["client", "-created_at", "-id"],
                condition=Q(status__in=NOT_FINAL_STATUSES),
                name="payment_client_in_flight",
            ),
            # Ops' list of flagged payments, newest first; the unflagged majority is not in it.
            models.Index(fields=["-flagged_at"], condition=Q(flagged_at__isnull=False), name="payment_flagged"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0, amount__lte=MAX_AMOUNT), name="payment_amount_bounded"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[a-z]{3}$"), name="payment_currency_iso_lower"),
            models.CheckConstraint(
                condition=Q(amount_capturable__gte=0, amount_capturable__lte=F("amount")),
                name="payment_amount_capturable_bounded",
            ),
            models.CheckConstraint(
                condition=Q(amount_received__gte=0, amount_received__lte=F("amount")),
                name="payment_amount_received_bounded",
            ),
            # The no-over-refund invariant, enforced by PostgreSQL whatever the code does.
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("amount_received")),
                name="payment_refunds_within_received",
            ),
            models.CheckConstraint(
                condition=Q(amount_to_capture__isnull=True)
                | Q(amount_to_capture__gt=0, amount_to_capture__lte=F("amount")),
                name="payment_amount_to_capture_bounded",
            ),
            models.CheckConstraint(condition=Q(status__in=PaymentStatus.values), name="payment_status_valid"),
            models.UniqueConstraint(
                fields=["provider", "provider_payment_id"],
                condition=Q(provider_payment_id__isnull=False),
                name="payment_provider_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def state_fields(self) -> tuple[models.Field, ...]:  # django-fsm's, computed once per class
        return fsm_state_fields(type(self))

    @property
    def public_status(self) -> str:
        return self.PUBLIC_STATUS[self.status]

    def provider_idempotency_key(self, action: str) -> str:
        """The Idempotency-Key for a provider call, derived from this row: the same on every retry.

        Never the client's key (two clients may choose the same one) and never made per attempt
        (a retry after a timeout must be the same request to the provider).
        """
        return f"{self.public_id}:{action}"

    @property
    def amount_refundable(self) -> int:
        return self.amount_received - self.amount_refunded

    # Transitions change database fields only; provider calls, events and outbox rows live in services.
    @fsm.transition(field=status, source=Status.PENDING, target=Status.PROCESSING)
    def mark_processing(self) -> None: ...

    @fsm.transition(field=status, source=[Status.PENDING, Status.PROCESSING], target=Status.REQUIRES_ACTION)
    def mark_requires_action(self, *, next_action: dict) -> None:
        self.next_action = next_action

    @fsm.transition(
        field=status,
        source=[Status.PENDING, Status.PROCESSING, Status.REQUIRES_ACTION],
        target=Status.REQUIRES_CAPTURE,
    )
    def mark_requires_capture(self, *, amount_capturable: int) -> None:
        self.amount_capturable = amount_capturable
        self.next_action = None

    @fsm.transition(field=status, source=Status.REQUIRES_CAPTURE, target=Status.CAPTURE_REQUESTED)
    def request_capture(self, *, amount: int) -> None:
        self.amount_to_capture = amount

    @fsm.transition(
        field=status,
        source=NOT_FINAL,
        target=Status.SUCCEEDED,
    )
    def mark_succeeded(self, *, amount_received: int, now: datetime) -> None:
        self.amount_received = amount_received
        self.amount_capturable = 0
        self.next_action = None
        self.succeeded_at = now

    @fsm.transition(
        field=status, source=[Status.PENDING, Status.PROCESSING, Status.REQUIRES_ACTION], target=Status.FAILED
    )
    def mark_failed(self, *, failure_code: str, failure_message: str) -> None:
        self.failure_code = failure_code
        self.failure_message = failure_message
        self.next_action = None

    @fsm.transition(field=status, source=Status.CAPTURE_REQUESTED, target=Status.REQUIRES_CAPTURE)
    def mark_capture_refused(self, *, amount_capturable: int) -> None:
        """The provider definitively refused the capture and still holds the authorization."""
        self.amount_capturable = amount_capturable
        self.amount_to_capture = None

    # Not from PROCESSING: the create is on its way to the provider (or its outcome is unknown), and a
    # cancel accepted then could not stop an automatic capture that lands after it; Stripe cannot cancel
    # a processing intent either. The client retries once the payment has left processing.
    @fsm.transition(
        field=status,
        source=[Status.REQUIRES_ACTION, Status.REQUIRES_CAPTURE],
        target=Status.CANCEL_REQUESTED,
    )
    def request_cancel(self) -> None: ...

    @fsm.transition(
        field=status,
        source=NOT_FINAL,
        target=Status.CANCELED,
    )
    def mark_canceled(self, *, now: datetime) -> None:
        self.amount_capturable = 0
        self.next_action = None
        self.canceled_at = now


class Refund(fsm.ConcurrentTransitionMixin, BaseModel):
    """Money going back on a succeeded payment; its amount is reserved on the payment when created."""

    Status = RefundStatus

    class Reason(models.TextChoices):  # Stripe's refund reasons
        DUPLICATE = "duplicate", "Duplicate"
        FRAUDULENT = "fraudulent", "Fraudulent"
        REQUESTED_BY_CUSTOMER = "requested_by_customer", "Requested by customer"

    public_id = models.CharField(max_length=40, unique=True, default=new_refund_id, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    status = fsm.FSMField(choices=Status.choices, default=Status.PENDING, protected=True)
    amount = models.BigIntegerField()
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True, default="")
    failure_reason = models.CharField(max_length=100, blank=True, default="")
    provider_refund_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # The janitor's back-off, as on Payment.
    next_check_at = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The janitor's claim of pending refunds, in its order (never checked first): the few pending
            # refunds, never the settled ones that make up the table.
            models.Index(
                F("next_check_at").asc(nulls_first=True),
                "id",
                condition=Q(status=RefundStatus.PENDING),
                name="refund_pending_check",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=RefundStatus.values), name="refund_status_valid"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def state_fields(self) -> tuple[models.Field, ...]:  # django-fsm's, computed once per class
        return fsm_state_fields(type(self))

    @property
    def public_status(self) -> str:
        return self.status.lower()

    def provider_idempotency_key(self, action: str = "create") -> str:
        """The Idempotency-Key of this refund's provider call, derived from the row like a payment's."""
        return f"{self.public_id}:{action}"

    @fsm.transition(field=status, source=Status.PENDING, target=Status.SUCCEEDED)
    def mark_succeeded(self) -> None: ...

    # A refund can fail after it succeeded (the customer's bank returns it, sometimes days later):
    # https://docs.stripe.com/refunds#failed-refunds . Still no cycle: FAILED is final.
    @fsm.transition(field=status, source=[Status.PENDING, Status.SUCCEEDED], target=Status.FAILED)
    def mark_failed(self, *, failure_reason: str) -> None:
        self.failure_reason = failure_reason


class PaymentEvent(models.Model):
    """One append-only line of a payment's timeline: what changed, from where, by whom, when.

    A database trigger (migration 0002) refuses UPDATE and DELETE, so the history cannot be rewritten.
    """

    class Source(models.TextChoices):
        API = "api", "API"
        WORKER = "worker", "Worker"
        WEBHOOK = "webhook", "Webhook"
        RECONCILIATION = "reconciliation", "Reconciliation"
        ADMIN = "admin", "Admin"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="events")
    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="events", null=True, blank=True)
    type = models.CharField(max_length=64)  # e.g. payment.created, payment.capture_requested
    from_status = models.CharField(max_length=32, blank=True, default="")
    to_status = models.CharField(max_length=32, blank=True, default="")
    source = models.CharField(max_length=16, choices=Source.choices)
    actor = models.CharField(max_length=150, blank=True, default="")  # key prefix, username, task
    # Why, in the words of the operator who asked (admin actions); shown to ops, never to API clients.
    reason = models.CharField(max_length=REASON_MAX_LENGTH, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)  # amounts and ids only: never personal data
    idempotency_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "idempotency_key"], name="payment_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.to_status}"
