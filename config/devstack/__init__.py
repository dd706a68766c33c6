"""
The development stack: embedded PostgreSQL and Redis, and the launcher behind `make run` / `make test`.

Nothing here runs in production; production gets `DATABASE_URL` and `REDIS_URL` from its environment.
`paths` is the only module that settings import: it computes where the embedded servers listen,
so that any `manage.py` command run from the checkout reaches the same database with no environment.
The local and test settings also install it as a Django app, for `manage.py stripe_sandbox`. Its
third-party packages (the `devstack` extra) are imported lazily, so importing it needs none of them.
"""
