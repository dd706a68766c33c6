from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        from outbox.registry import outbox_topic_register
        from webhooks import topics

        for topic, task_name in topics.ROUTES.items():
            outbox_topic_register(topic=topic, task_name=task_name)
