import pytest
from django.utils import timezone

from payments.errors import PaymentNotFound
from payments.models import Payment
from payments.services.flags import payment_flag
from payments.services.payments import Actor
from tests.factories import payment_with_status

pytestmark = pytest.mark.django_db
WEBHOOK = Actor(source="webhook", name="stripe")


def flag(payment: Payment, reason: str = "dispute", reference: str = "dp_1", **kwargs) -> bool:
    return payment_flag(
        payment_id=payment.public_id, reason=reason, reference=reference, actor=WEBHOOK, now=timezone.now(), **kwargs
    )


def test_flagging_marks_the_payment_for_ops_and_writes_its_reason_on_the_timeline():
    payment = payment_with_status(Payment.Status.SUCCEEDED)

    flagged = flag(payment, data={"amount": 100}, event_id="evt_1")

    payment.refresh_from_db()
    assert flagged and payment.flagged_at is not None and payment.flag_reason == "dispute"
    assert payment.status == Payment.Status.SUCCEEDED
    entry = payment.events.get()
    assert (entry.type, entry.source) == ("payment.flagged", "webhook")
    assert entry.data == {"reason": "dispute", "reference": "dp_1", "amount": 100, "event_id": "evt_1"}


def test_the_same_reason_and_reference_flags_once():
    payment = payment_with_status(Payment.Status.SUCCEEDED)

    results = [flag(payment), flag(payment), flag(payment, reference="dp_2")]

    assert results == [True, False, True]
    assert payment.events.filter(type="payment.flagged").count() == 2


def test_flagging_an_unknown_payment_raises_not_found():
    unknown = payment_with_status(Payment.Status.SUCCEEDED)
    Payment.objects.filter(pk=unknown.pk).delete()

    with pytest.raises(PaymentNotFound):
        flag(unknown)
