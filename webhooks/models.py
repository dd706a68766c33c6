from django.db import models
from django.db.models import Q


# Module-level so that Meta, whose body cannot see names of the class around it, builds its CHECK
# constraints from them: one home for each list.
class WebhookEventStatus(models.TextChoices):
    RECEIVED = "RECEIVED", "Received"  # verified and stored; its processing is an outbox row
    PROCESSING = "PROCESSING", "Processing"  # a worker has it (again, after a retry or a lease expiry)
    PROCESSED = "PROCESSED", "Processed"  # its effects committed (or it changed nothing: see outcome)
    FAILED = "FAILED", "Failed"  # the last attempt failed; the outbox retries it (attempts, last_error)
    IGNORED = "IGNORED", "Ignored"  # a type we do not handle, or an object that is not ours
    PARKED = "PARKED", "Parked"  # its payment never appeared: waiting for ops (last_error says why)


class WebhookEventSource(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"  # posted to /webhooks/stripe
    BACKFILL = "backfill", "Backfill"  # pulled from the provider's event list by reconciliation


SETTLED = [WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED]
# Ops' queue: everything that is not settled, PARKED and FAILED above all.
UNSETTLED = [s for s in WebhookEventStatus.values if s not in SETTLED]


class WebhookEvent(models.Model):
    """A provider event, verified and stored once (unique on the provider's event id), then processed.

        RECEIVED ──worker──▶ PROCESSING ──▶ PROCESSED | IGNORED
                                  │  ▲
                  handler failed  ▼  │ outbox retry (backoff)
                               FAILED ──payment never appeared──▶ PARKED ──replay (ops)──▶ RECEIVED

    `payload` is the event with personal data removed (webhooks/redaction.py): what the handlers
    read, and nothing more.
    """

    Status = WebhookEventStatus
    Source = WebhookEventSource

    provider = models.CharField(max_length=32)
    provider_event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=128)
    object_type = models.CharField(max_length=64, blank=True, default="")  # data.object.object
    object_id = models.CharField(max_length=255, blank=True, default="")  # data.object.id, e.g. pi_…, re_…
    # Our payment, when the event names it (metadata) or a handler found it: "events of this payment".
    payment_public_id = models.CharField(max_length=40, blank=True, default="")
    provider_created_at = models.DateTimeField()  # the event's `created`, the provider's clock
    api_version = models.CharField(max_length=64, blank=True, default="")  # "" when the event named none
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.WEBHOOK)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    # What processing came to, for ops and the demo: applied, no_change, flagged, unhandled_type, not_ours.
    outcome = models.CharField(max_length=32, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Re-running a handler at will is safe but acts on live payments: its own permission.
        permissions = [("replay_webhookevent", "Can replay webhook events (process them again)")]
        constraints = [
            # Stored once. provider_event_id first, so a lookup by the event id alone uses it too.
            models.UniqueConstraint(fields=["provider_event_id", "provider"], name="webhook_event_once"),
            models.CheckConstraint(
                condition=Q(status__in=WebhookEventStatus.values), name="webhook_event_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=WebhookEventSource.values), name="webhook_event_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=SETTLED, processed_at__isnull=False)
                | (~Q(status__in=SETTLED) & Q(processed_at__isnull=True)),
                name="webhook_event_processed_at_iff_settled",
            ),
        ]
        indexes = [
            # Ops' queue (admin status filter, newest first); settled events, most of the table, stay out.
            models.Index(fields=["status", "-id"], condition=Q(status__in=UNSETTLED), name="webhook_event_unsettled"),
            models.Index(fields=["object_id"], name="webhook_event_object"),
            models.Index(
                fields=["payment_public_id", "id"], condition=~Q(payment_public_id=""), name="webhook_event_payment"
            ),
            models.Index(fields=["type", "-id"], name="webhook_event_type"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.provider_event_id}"


class WebhookBackfillCursor(models.Model):
    """How far the missed-webhooks backfill has read the provider's event list (one row per provider).

    The provider lists events newest first, so a run walks back from the newest event to
    `last_event_id`. A walk cut short by the per-run bound is resumed: `walk_after_event_id` is where
    the next run goes on listing, and `walk_head_*` the newest event of that walk, which becomes
    `last_event_*` once the walk reaches the old cursor. Nothing older than `last_event_*` is ever read
    again; nothing between it and the head is skipped.
    """

    provider = models.CharField(max_length=32, unique=True)
    last_event_id = models.CharField(max_length=255, blank=True, default="")
    last_event_created_at = models.DateTimeField(null=True, blank=True)
    walk_head_event_id = models.CharField(max_length=255, blank=True, default="")
    walk_head_created_at = models.DateTimeField(null=True, blank=True)
    walk_after_event_id = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.provider} events up to {self.last_event_id or '(none yet)'}"
