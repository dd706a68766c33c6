"""The endpoint under production settings (security middleware, CSP, HTTPS behind a proxy, lockout):
a signed event is stored, and forged ones are 400s, never redirects or 429s."""

import json

import pytest

from tests.config.test_production_settings import run_in_production
from tests.fixtures.live import database_url
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)
POST_AS_STRIPE_BEHIND_A_PROXY = """
import json, time
import django, stripe
django.setup()
from django.test import Client

client = Client()
intent = {"id": "pi_1", "object": "payment_intent"}
body = json.dumps({"id": "evt_prod_1", "object": "event", "type": "payment_intent.succeeded",
                   "created": int(time.time()), "data": {"object": intent}}).encode()
signed = stripe.WebhookSignature.generate_signature_header(body.decode(), "whsec_prod_new")
https = {"HTTP_X_FORWARDED_PROTO": "https", "content_type": "application/json"}
accepted = client.post("/webhooks/stripe", data=body, HTTP_STRIPE_SIGNATURE=signed, **https)
forged = {client.post("/webhooks/stripe", data=body, HTTP_STRIPE_SIGNATURE="t=1,v1=00", **https).status_code
          for _ in range(40)}
plain_http = client.post("/webhooks/stripe", data=body, HTTP_STRIPE_SIGNATURE=signed, content_type="application/json")
print(json.dumps({"accepted": accepted.status_code, "forged": sorted(forged), "plain_http": plain_http.status_code,
                  "hsts": accepted.has_header("Strict-Transport-Security")}))
"""


def test_a_signed_event_is_accepted_under_production_settings_and_forged_ones_refused():
    result = run_in_production(
        "-c",
        POST_AS_STRIPE_BEHIND_A_PROXY,
        DATABASE_URL=database_url(),
        ALLOWED_HOSTS="testserver",
        STRIPE_WEBHOOK_SECRET="whsec_prod_new,whsec_prod_old",
        API_KEY_FAILURE_LIMIT="5",
    )

    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers == {"accepted": 200, "forged": [400], "plain_http": 301, "hsts": True}
    assert WebhookEvent.objects.get().provider_event_id == "evt_prod_1"
