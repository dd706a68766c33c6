"""The payment provider seam. `stripe.py` holds Stripe's published facts (and, later, its client)."""
