"""Stripe's error bodies: {"error": {"type", "code", "message", "param", ...}} with Stripe's statuses."""

from __future__ import annotations


class StripeError(Exception):
    def __init__(
        self, status: int, type: str, message: str, *, code: str | None = None, param: str | None = None, **extra
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {
                "type": type,
                "message": message,
                **({"code": code} if code else {}),
                **({"param": param} if param else {}),
                **extra,
            }
        }


def invalid(message: str, *, code: str = "parameter_invalid", param: str | None = None, **extra) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code=code, param=param, **extra)


def missing(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", code="parameter_missing", param=param)


def not_found(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(
        404, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def unexpected_state(object_id: str, status: str, action: str) -> StripeError:
    return invalid(
        f"This PaymentIntent's {action} could not be performed because it has a status of {status}.",
        code="payment_intent_unexpected_state",
        param=None,
    )


def api_error(status: int) -> StripeError:
    return StripeError(status, "api_error", "An unexpected error occurred (sandbox fault injection).")
