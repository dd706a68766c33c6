"""factory_boy factories for the domain; tests build data through these, never by hand."""

import factory
from django.contrib.auth.models import Permission, User
from factory.django import DjangoModelFactory

from payments.models import ApiClient, ApiKey, Payment, Refund
from tests.pii import PLANTED


class ApiClientFactory(DjangoModelFactory):
    class Meta:
        model = ApiClient
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"client-{n}")


def api_key_create(*, client: ApiClient | None = None, name: str = "test key") -> tuple[ApiKey, str]:
    """Return a stored key and its plaintext (only a hash is kept, as in production)."""
    return ApiKey.objects.create_key(name=name, client=client or ApiClientFactory())


class PaymentFactory(DjangoModelFactory):
    class Meta:
        model = Payment

    client = factory.SubFactory(ApiClientFactory)
    # Fixed, like the fake gateway's intents (tests/fixtures/gateway.py): a random amount let a scripted
    # provider answer exceed the payment now and then, and the CHECK constraints failed one run in ten.
    amount = 2000
    currency = "eur"
    payment_method = "pm_card_visa"
    # Customer data as customers write it, planted so the suite's log scan (tests/pii.py) can find a leak.
    description = PLANTED["description"]
    customer_reference = PLANTED["email"]
    metadata = factory.LazyFunction(
        lambda: {"note": PLANTED["metadata_value"], "card": PLANTED["card_number"], "buyer": PLANTED["name"]}
    )


def payment_with_status(status: str, **kwargs) -> Payment:
    """Build a payment already in `status` (the FSM field is protected, so set it on the queryset)."""
    payment = PaymentFactory(**kwargs)
    updates = {"status": status}
    if status == Payment.Status.SUCCEEDED:
        updates["amount_received"] = kwargs.get("amount_received", payment.amount)
    if status == Payment.Status.REQUIRES_CAPTURE:
        updates["amount_capturable"] = kwargs.get("amount_capturable", payment.amount)
    Payment.objects.filter(pk=payment.pk).update(**updates)
    return Payment.objects.get(pk=payment.pk)


class RefundFactory(DjangoModelFactory):
    class Meta:
        model = Refund

    payment = factory.SubFactory(PaymentFactory)
    amount = factory.LazyAttribute(lambda refund: refund.payment.amount_received or 1)


class StaffUserFactory(DjangoModelFactory):
    """A staff user holding only the permissions listed (`"payments.view_payment"`), never a superuser."""

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff-{n}")
    password = factory.django.Password("staff-password")
    is_staff = True

    @factory.post_generation
    def permissions(self, create: bool, extracted: list[str] | None, **kwargs) -> None:
        for name in extracted or []:
            app_label, codename = name.split(".")
            self.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
