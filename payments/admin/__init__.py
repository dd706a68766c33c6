from payments.admin import clients, dashboard, payments  # noqa: F401
