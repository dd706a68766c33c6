from payments.admin import payments  # noqa: F401
