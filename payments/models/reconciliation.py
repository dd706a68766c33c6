from django.db import models
from django.db.models import Q


class MismatchKind(models.TextChoices):  # module level, so Meta builds its CHECK from it (one home)
    PAYMENT_MISSING_AT_PROVIDER = "PAYMENT_MISSING_AT_PROVIDER", "Payment missing at the provider"
    PAYMENT_MISSING_HERE = "PAYMENT_MISSING_HERE", "Payment missing here"
    PAYMENT_AMOUNT = "PAYMENT_AMOUNT", "Payment amount differs"
    PAYMENT_CURRENCY = "PAYMENT_CURRENCY", "Payment currency differs"
    PAYMENT_STATUS = "PAYMENT_STATUS", "Payment status differs"
    REFUND_MISSING_AT_PROVIDER = "REFUND_MISSING_AT_PROVIDER", "Refund missing at the provider"
    REFUND_MISSING_HERE = "REFUND_MISSING_HERE", "Refund missing here"
    REFUND_AMOUNT = "REFUND_AMOUNT", "Refund amount differs"
    REFUND_CURRENCY = "REFUND_CURRENCY", "Refund currency differs"
    REFUND_STATUS = "REFUND_STATUS", "Refund status differs"


class ReconciliationMismatch(models.Model):
    """One difference between our payments or refunds created on a day (UTC) and the provider's list.

    Written by the daily reconciliation report (payments/services/reconciliation.py): one row per
    (day, kind, our ids, provider id), updated when the report runs again, closed (`resolved_at`) when
    the difference no longer holds, and opened again if it comes back. `ours` and `theirs` hold the
    compared fields only (ids, amounts, currency, status): never personal data.
    """

    Kind = MismatchKind

    day = models.DateField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    payment_public_id = models.CharField(max_length=40, blank=True, default="")
    refund_public_id = models.CharField(max_length=40, blank=True, default="")
    provider_id = models.CharField(max_length=255, blank=True, default="")  # pi_… or re_…, "" if none
    ours = models.JSONField(default=dict, blank=True)
    theirs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "reconciliation mismatches"
        constraints = [
            # Re-running a day's report updates its rows, never duplicates them.
            models.UniqueConstraint(
                fields=["day", "kind", "payment_public_id", "refund_public_id", "provider_id"],
                name="reconciliation_mismatch_once",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=MismatchKind.values), name="reconciliation_mismatch_kind_valid"
            ),
        ]
        indexes = [
            # Open mismatches by kind: /metrics at each scrape, the dashboard panel, the admin's "open" filter.
            models.Index(fields=["kind"], condition=Q(resolved_at__isnull=True), name="reconciliation_mismatch_open"),
            models.Index(fields=["day"], name="reconciliation_mismatch_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.payment_public_id or self.provider_id}"
