class OutboxOutsideTransaction(RuntimeError):
    """An outbox row written outside a transaction could be committed without the change it follows."""


class RetryLater(Exception):  # an instruction to the outbox, not a failure
    """Raised by a consumer whose work did not finish: the row goes back to DUE with its next attempt time.

    `retry_after` (seconds) is a floor under the backoff, e.g. a provider's Retry-After or a rate
    limiter's wait. `count_attempt=False` when no attempt was really made (no token, breaker open):
    the row gets its attempt back, so deferrals never exhaust the attempts of the work itself.
    """

    def __init__(
        self, message: str, *, error_type: str, retry_after: float | None = None, count_attempt: bool = True
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.retry_after = retry_after
        self.count_attempt = count_attempt


class UnknownTopic(LookupError):
    """No app registered a task for this topic (a deploy without the consumer, or a typo)."""


class GiveUp(Exception):  # an instruction to the outbox, not a failure
    """Raised by a consumer when no retry can help (a bug, a conflict only a person can settle): DEAD at once."""

    def __init__(self, message: str, *, error_type: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


class PublishInterrupted(Exception):
    """The broker failed part-way through a batch: its first `published` messages are surely in the broker.

    The others are given back. Those of the pipeline that failed may have landed anyway (delivery is
    uncertain when a connection breaks mid-pipeline): delivery is at least once, and consumers dedupe.
    """

    def __init__(self, *, published: int) -> None:
        super().__init__(f"{published} messages published before the broker failed")
        self.published = published
