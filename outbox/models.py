from django.db import models
from django.db.models import Q


class OutboxMessage(models.Model):
    """Work that must follow a commit, written in the same transaction as the change that needs it.

    The relay drains unsent rows (FOR UPDATE SKIP LOCKED, oldest first) into Celery; retries are
    data on the row (`attempts`, `available_at`, `last_error`), so a broker restart loses nothing.
    """

    topic = models.CharField(max_length=128)  # reverse-domain, e.g. payments.payment.create_requested
    payload = models.JSONField()  # ids only; consumers read current state from the database
    created_at = models.DateTimeField(auto_now_add=True)
    available_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            # The relay's only query: unsent rows that are due. Sent rows never enter the index.
            models.Index(fields=["available_at", "id"], condition=Q(sent_at__isnull=True), name="outbox_unsent_due"),
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"
