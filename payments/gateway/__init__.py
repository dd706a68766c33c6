"""The provider gateway: `base` is the interface; `stripe` the only implementation and the only `import stripe`;
`calls` the one log line per provider HTTP call."""
