"""The provider gateway: `base` is the interface; `stripe` the only implementation and the only `import stripe`;
`stripe_currencies` Stripe's published currency facts; `calls` the one log line per provider HTTP call;
`limits` the rate limit and circuit breaker shared by every worker."""
