from payments.admin import clients, dashboard, jobs, payments  # noqa: F401
