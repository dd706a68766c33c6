from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from payments.api import schema  # noqa: F401 - registers the OpenAPI authentication extension
