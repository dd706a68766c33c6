from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from payments.models import IdempotencyKey
from payments.tasks import idempotency_key_purge_task
from tests.factories import ApiClientFactory

pytestmark = pytest.mark.django_db


def test_idempotency_key_purge_task_removes_expired_keys_and_is_on_the_beat_schedule():
    client = ApiClientFactory()
    for key, delta in (("gone", -1), ("kept", 1)):
        IdempotencyKey.objects.create(
            client=client,
            key=key,
            request_method="POST",
            request_path="/",
            request_hash="h",
            expires_at=timezone.now() + timedelta(hours=delta),
        )

    deleted = idempotency_key_purge_task.apply(kwargs={}).get()

    assert deleted == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["kept"]
    assert settings.CELERY_BEAT_SCHEDULE["payments.idempotency_key_purge"]["task"] == idempotency_key_purge_task.name
