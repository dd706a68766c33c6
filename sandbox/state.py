"""The sandbox's provider state: PaymentIntents, charges, refunds, events, endpoints and the ledger."""

from __future__ import annotations

import copy
import re
import secrets
import threading
import time
from collections.abc import Callable

from sandbox import cards
from sandbox.errors import StripeError, invalid, missing, not_found, unexpected_state

CANCELABLE = {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
CONFIRMABLE = {"requires_payment_method", "requires_confirmation"}
_SEARCH_CLAUSE = re.compile(
    r"""^\s*(metadata\[['"](?P<key>[^'"]+)['"]\]|(?P<field>\w+))\s*:\s*['"]?(?P<value>[^'"]*)['"]?\s*$"""
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _int(params: dict, name: str, *, required: bool = False, minimum: int = 1) -> int | None:
    if name not in params:
        if required:
            raise missing(name)
        return None
    try:
        value = int(params[name])
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {params[name]}", code="parameter_invalid_integer", param=name) from None
    if value < minimum:
        raise invalid(f"This value must be greater than or equal to {minimum}.", param=name)
    return value


def _bool(params: dict, name: str) -> bool:
    return str(params.get(name, "false")).lower() == "true"


class Store:
    """All provider-side state behind one re-entrant lock (requests are short; contention is low)."""

    def __init__(
        self,
        *,
        api_version: str,
        async_settle_seconds: float = 2.0,
        on_event: Callable[[dict, dict], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.api_version = api_version
        self.async_settle_seconds = async_settle_seconds
        self.on_event = on_event or (lambda event, ctx: None)
        self.clock = clock
        self.base_url = ""
        self.reset()

    def reset(self) -> None:
        with self.lock:
            for timer in getattr(self, "timers", []):
                timer.cancel()
            self.timers: list[threading.Timer] = []
            self.intents: dict[str, dict] = {}
            self.charges: dict[str, dict] = {}
            self.refunds: dict[str, dict] = {}
            self.events: dict[str, dict] = {}
            self.endpoints: dict[str, dict] = {}
            self.ledger: dict[str, dict] = {}

    # --- events -------------------------------------------------------------------------------
    def emit(self, type: str, obj: dict, ctx: dict | None = None) -> dict:
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": self.api_version,
            "created": int(self.clock()),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "type": type,
            "pending_webhooks": sum(1 for e in self.endpoints.values() if _wants(e, type)),
            "request": {"id": (ctx or {}).get("request_id"), "idempotency_key": (ctx or {}).get("idempotency_key")},
            "_delivery_success": None,
        }
        self.events[event["id"]] = event
        self.on_event(event, ctx or {})
        return event

    # --- payment intents ----------------------------------------------------------------------
    def _intent(self, intent_id: str) -> dict:
        try:
            return self.intents[intent_id]
        except KeyError:
            raise not_found("payment_intent", intent_id) from None

    def create_intent(self, params: dict, ctx: dict) -> dict:
        amount = _int(params, "amount", required=True, minimum=1)
        if "currency" not in params:
            raise missing("currency")
        currency = str(params["currency"]).lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise invalid(f"Invalid currency: {params['currency']}.", param="currency")
        capture_method = params.get("capture_method", "automatic_async")
        if capture_method not in ("automatic", "automatic_async", "manual"):
            raise invalid(f"Invalid capture_method: {capture_method}", param="capture_method")
        with self.lock:
            intent_id = new_id("pi")
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": 0,
                "amount_received": 0,
                "capture_method": capture_method,
                "cancellation_reason": None,
                "canceled_at": None,
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
                "confirmation_method": "automatic",
                "created": int(self.clock()),
                "currency": currency,
                "description": params.get("description"),
                "last_payment_error": None,
                "latest_charge": None,
                "livemode": False,
                "metadata": dict(params.get("metadata") or {}),
                "next_action": None,
                "payment_method": params.get("payment_method"),
                "payment_method_types": ["card"],
                "return_url": params.get("return_url"),
                "status": "requires_payment_method",
            }
            if intent["payment_method"]:
                intent["status"] = "requires_confirmation"
            self.intents[intent_id] = intent
            self.ledger[intent_id] = {
                "created": 1,
                "confirmed": 0,
                "charged": 0,
                "captured": 0,
                "amount_captured": 0,
                "canceled": 0,
                "refunded": 0,
                "amount_refunded": 0,
                "metadata": intent["metadata"],
            }
            self.emit("payment_intent.created", intent, ctx)
            if _bool(params, "confirm"):
                return self._confirm(intent, params, ctx)
            return intent

    def update_intent(self, intent_id: str, params: dict, ctx: dict) -> dict:
        with self.lock:
            intent = self._intent(intent_id)
            if "metadata" in params:
                intent["metadata"].update(params["metadata"] or {})
            for field in ("description", "payment_method"):
                if field in params:
                    intent[field] = params[field]
            return intent

    def confirm_intent(self, intent_id: str, params: dict, ctx: dict) -> dict:
        with self.lock:
            return self._confirm(self._intent(intent_id), params, ctx)

    def _confirm(self, intent: dict, params: dict, ctx: dict) -> dict:
        if intent["status"] not in CONFIRMABLE:
            raise unexpected_state(intent["id"], intent["status"], "confirm")
        if params.get("payment_method"):
            intent["payment_method"] = params["payment_method"]
        if not intent["payment_method"]:
            raise missing("payment_method")
        outcome = cards.outcome_for(intent["payment_method"])
        if outcome is None:
            raise not_found("PaymentMethod", intent["payment_method"], param="payment_method")
        self.ledger[intent["id"]]["confirmed"] += 1
        intent["last_payment_error"] = None
        if outcome.kind == cards.DECLINE:
            self._fail(intent, outcome, ctx)
            raise StripeError(
                402,
                "card_error",
                outcome.message,
                code=outcome.code,
                param=None,
                decline_code=outcome.decline_code,
                payment_intent=copy.deepcopy(intent),
                doc_url=f"https://docs.stripe.com/error-codes/{outcome.code.replace('_', '-')}",
            )
        if outcome.kind == cards.AUTHENTICATE:
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": f"{self.base_url}/_sandbox/payment_intents/{intent['id']}/authenticate",
                    "return_url": intent.get("return_url"),
                },
            }
            self.emit("payment_intent.requires_action", intent, ctx)
            return intent
        if outcome.kind in (cards.ASYNC_SUCCEED, cards.ASYNC_FAIL):
            intent["status"] = "processing"
            self.emit("payment_intent.processing", intent, ctx)
            timer = threading.Timer(self.async_settle_seconds, self._settle_async, args=(intent["id"], outcome))
            timer.daemon = True
            self.timers.append(timer)
            timer.start()
            return intent
        self._authorize(intent, ctx)
        return intent

    def _authorize(self, intent: dict, ctx: dict | None) -> None:
        """The card said yes: a charge exists; capture now or wait for a manual capture."""
        charge = {
            "id": new_id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "captured": False,
            "currency": intent["currency"],
            "paid": True,
            "payment_intent": intent["id"],
            "refunded": False,
            "status": "succeeded",
            "created": int(self.clock()),
            "metadata": intent["metadata"],
        }
        self.charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        intent["next_action"] = None
        self.ledger[intent["id"]]["charged"] += 1
        if intent["capture_method"] == "manual":
            intent["status"] = "requires_capture"
            intent["amount_capturable"] = intent["amount"]
            self.emit("payment_intent.amount_capturable_updated", intent, ctx)
            return
        self._capture(intent, intent["amount"], ctx)

    def _capture(self, intent: dict, amount: int, ctx: dict | None) -> None:
        charge = self.charges[intent["latest_charge"]]
        charge.update(captured=True, amount_captured=amount)
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        ledger = self.ledger[intent["id"]]
        ledger["captured"] += 1
        ledger["amount_captured"] += amount
        self.emit("charge.succeeded", charge, ctx)
        self.emit("payment_intent.succeeded", intent, ctx)

    def _fail(self, intent: dict, outcome: cards.Outcome, ctx: dict | None) -> None:
        intent["status"] = "requires_payment_method"
        intent["next_action"] = None
        intent["last_payment_error"] = {
            "type": "card_error",
            "code": outcome.code,
            "decline_code": outcome.decline_code,
            "message": outcome.message,
            "payment_method": {"id": intent["payment_method"]},
        }
        self.emit("payment_intent.payment_failed", intent, ctx)

    def _settle_async(self, intent_id: str, outcome: cards.Outcome) -> None:
        with self.lock:
            intent = self.intents.get(intent_id)
            if intent is None or intent["status"] != "processing":
                return
            if outcome.kind == cards.ASYNC_FAIL:
                self._fail(intent, outcome, None)
            else:
                self._authorize(intent, None)

    def authenticate(self, intent_id: str, succeed: bool) -> dict:
        """Sandbox-only: the customer completes (or fails) 3-D Secure."""
        with self.lock:
            intent = self._intent(intent_id)
            if intent["status"] != "requires_action":
                raise unexpected_state(intent_id, intent["status"], "authentication")
            if succeed:
                self._authorize(intent, None)
            else:
                self._fail(
                    intent,
                    cards.Outcome(
                        cards.DECLINE,
                        code="payment_intent_authentication_failure",
                        message="The provided PaymentMethod has failed authentication.",
                    ),
                    None,
                )
            return intent

    def capture_intent(self, intent_id: str, params: dict, ctx: dict) -> dict:
        with self.lock:
            intent = self._intent(intent_id)
            if intent["status"] != "requires_capture":
                raise unexpected_state(intent_id, intent["status"], "capture")
            amount = _int(params, "amount_to_capture") or intent["amount_capturable"]
            if amount > intent["amount_capturable"]:
                raise invalid(
                    "The amount to capture exceeds the capturable amount.",
                    code="amount_too_large",
                    param="amount_to_capture",
                )
            self._capture(intent, amount, ctx)
            return intent

    def cancel_intent(self, intent_id: str, params: dict, ctx: dict) -> dict:
        with self.lock:
            intent = self._intent(intent_id)
            if intent["status"] not in CANCELABLE:
                raise unexpected_state(intent_id, intent["status"], "cancel")
            intent.update(
                status="canceled",
                amount_capturable=0,
                next_action=None,
                canceled_at=int(self.clock()),
                cancellation_reason=params.get("cancellation_reason"),
            )
            self.ledger[intent_id]["canceled"] += 1
            self.emit("payment_intent.canceled", intent, ctx)
            return intent

    def search_intents(self, query: str) -> list[dict]:
        """Support Stripe's search syntax for `field:'value'` clauses joined by AND."""
        clauses = [c for c in re.split(r"\s+AND\s+", query or "") if c.strip()]
        matchers = []
        for clause in clauses:
            match = _SEARCH_CLAUSE.match(clause)
            if not match:
                raise invalid(f"Invalid search query: {clause}", param="query")
            matchers.append(match.groupdict())
        with self.lock:
            return [i for i in self.intents.values() if all(_matches(i, m) for m in matchers)]

    # --- refunds ------------------------------------------------------------------------------
    def create_refund(self, params: dict, ctx: dict) -> dict:
        with self.lock:
            if params.get("payment_intent"):
                intent = self._intent(params["payment_intent"])
            elif params.get("charge"):
                charge = self.charges.get(params["charge"]) or _raise(not_found("charge", params["charge"], "charge"))
                intent = self.intents[charge["payment_intent"]]
            else:
                raise missing("payment_intent")
            if intent["status"] != "succeeded":
                raise invalid(
                    "This PaymentIntent does not have a successful charge to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
            charge = self.charges[intent["latest_charge"]]
            left = charge["amount_captured"] - charge["amount_refunded"]
            if left <= 0:
                raise invalid(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
            amount = _int(params, "amount") or left
            if amount > left:
                raise invalid(
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                    code="amount_too_large",
                    param="amount",
                )
            refund = {
                "id": new_id("re"),
                "object": "refund",
                "amount": amount,
                "charge": charge["id"],
                "created": int(self.clock()),
                "currency": intent["currency"],
                "metadata": dict(params.get("metadata") or {}),
                "payment_intent": intent["id"],
                "reason": params.get("reason"),
                "status": "succeeded",
                "failure_reason": None,
            }
            self.refunds[refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
            ledger = self.ledger[intent["id"]]
            ledger["refunded"] += 1
            ledger["amount_refunded"] += amount
            self.emit("refund.created", refund, ctx)
            self.emit("charge.refunded", charge, ctx)
            return refund

    # --- ledger -------------------------------------------------------------------------------
    def ledger_report(self) -> dict:
        with self.lock:
            intents = copy.deepcopy(self.ledger)
        totals = {
            key: sum(entry[key] for entry in intents.values())
            for key in (
                "created",
                "confirmed",
                "charged",
                "captured",
                "amount_captured",
                "canceled",
                "refunded",
                "amount_refunded",
            )
        }
        return {"payment_intents": intents, "totals": totals}


def _raise(error: StripeError):
    raise error


def _wants(endpoint: dict, type: str) -> bool:
    enabled = endpoint.get("enabled_events") or ["*"]
    return "*" in enabled or type in enabled


def _matches(intent: dict, matcher: dict) -> bool:
    if matcher["key"]:
        return intent["metadata"].get(matcher["key"]) == matcher["value"]
    return str(intent.get(matcher["field"])) == matcher["value"]


def public(obj: dict) -> dict:
    """The object as Stripe would send it: without the sandbox's private bookkeeping (keys starting with _)."""
    return {key: value for key, value in obj.items() if not key.startswith("_")}
