from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from outbox.registry import outbox_topic_register
        from payments import topics
        from payments.api import schema  # noqa: F401 - registers the OpenAPI authentication extension

        for topic, task_name in topics.ROUTES.items():
            outbox_topic_register(topic=topic, task_name=task_name)
