"""
The chaos suite (issue 12): a seeded run that drives payments through a whole stack of its own while
the sandbox and the harness break things, then counts every cent from both sides. `stack.py` starts
the processes, `checkout.py` plays the checkout clients, `faults.py` holds the seeded plan, `verdict.py`
checks our database against the provider's ledger; `run.py` is `make chaos`.
"""
