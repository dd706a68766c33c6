from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from django.core.signals import request_started

        from config.db import connections_close_dead
        from outbox.registry import outbox_topic_register
        from payments import topics
        from payments.api import schema  # noqa: F401 - registers the OpenAPI authentication extension

        for topic, task_name in topics.ROUTES.items():
            outbox_topic_register(topic=topic, task_name=task_name)
        # In place of CONN_HEALTH_CHECKS' SELECT 1 per request: a local check of each kept connection.
        request_started.connect(connections_close_dead, dispatch_uid="config.db.connections_close_dead")
