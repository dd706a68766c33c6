class OutboxOutsideTransaction(RuntimeError):
    """An outbox row written outside a transaction could be committed without the change it follows."""
