"""The provider gateway: `base` is the interface; `stripe` the only implementation and the only `import stripe`."""
