from django.db import models
from django.db.models import Q


class OutboxStatus(models.TextChoices):
    DUE = "DUE", "Due"
    HANDED_OUT = "HANDED_OUT", "Handed out"  # published to the broker; the work has not reported back
    DONE = "DONE", "Done"
    DEAD = "DEAD", "Dead"  # the last attempt failed; ops retry it by hand


CLAIMABLE = [OutboxStatus.DUE, OutboxStatus.HANDED_OUT]


class OutboxMessage(models.Model):
    """Work that must follow a commit, written in the same transaction as the change that needs it.

    Lifecycle, all of it on the row (a broker restart or a killed worker loses nothing):

        DUE ──relay claims──▶ HANDED_OUT ──task reports──▶ DONE
         ▲                      │  │
         └──task: retry later───┘  └──lease expires (task never reported)──▶ handed out again
                                   └──last attempt failed──▶ DEAD (kept for ops, never deleted silently)

    `available_at` is when the relay may next hand the row out: for a DUE row its next attempt time,
    for a HANDED_OUT row the end of its lease. One partial index on it serves the relay's only query.
    """

    Status = OutboxStatus

    topic = models.CharField(max_length=128)  # reverse-domain, e.g. payments.payment.create_requested
    payload = models.JSONField()  # ids only; consumers read current state from the database
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DUE)
    created_at = models.DateTimeField(auto_now_add=True)
    available_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)  # hand-outs that counted (a deferral gives one back)
    handed_out_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)  # the last hand-out's task began (its attempt counts)
    done_at = models.DateTimeField(null=True, blank=True)
    last_error_type = models.CharField(max_length=64, blank=True, default="")
    last_error = models.TextField(blank=True, default="")

    class Meta:
        # Money-moving ops actions have permissions of their own, never "view" or "change".
        permissions = [("retry_outboxmessage", "Can make outbox messages due again (retry now)")]
        indexes = [
            # The relay's claim: claimable rows that are due, oldest first. Done and dead rows never enter it.
            models.Index(fields=["available_at", "id"], condition=Q(status__in=CLAIMABLE), name="outbox_claimable"),
            # Housekeeping deletes done rows by age; ops list dead ones.
            models.Index(fields=["done_at"], condition=Q(status=OutboxStatus.DONE), name="outbox_done"),
            models.Index(fields=["id"], condition=Q(status=OutboxStatus.DEAD), name="outbox_dead"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OutboxStatus.values), name="outbox_status_valid"),
            models.CheckConstraint(
                condition=Q(status=OutboxStatus.DONE, done_at__isnull=False)
                | (~Q(status=OutboxStatus.DONE) & Q(done_at__isnull=True)),
                name="outbox_done_at_iff_done",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"
