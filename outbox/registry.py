"""Topic → Celery task routing. Apps register their own topics (in AppConfig.ready), so outbox imports no app."""

from __future__ import annotations

from outbox.errors import UnknownTopic

_ROUTES: dict[str, str] = {}


def outbox_topic_register(*, topic: str, task_name: str) -> None:
    """Route messages of `topic` to the Celery task named `task_name` (registering twice the same is fine)."""
    existing = _ROUTES.get(topic)
    if existing is not None and existing != task_name:
        raise ValueError(f"topic {topic!r} is already routed to {existing!r}")
    _ROUTES[topic] = task_name


def outbox_topic_task_name(*, topic: str) -> str:
    """:raises UnknownTopic: if no app registered the topic"""
    try:
        return _ROUTES[topic]
    except KeyError:
        raise UnknownTopic(f"no task is registered for outbox topic {topic!r}") from None


def outbox_topics() -> dict[str, str]:
    return dict(_ROUTES)
