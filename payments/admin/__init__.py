from payments.admin import clients, dashboard, jobs, payments, reconciliation  # noqa: F401
