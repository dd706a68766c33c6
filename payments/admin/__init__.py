from payments.admin import clients, payments  # noqa: F401
