from django.apps import AppConfig


class DevstackConfig(AppConfig):
    """The dev stack as a Django app, for its development commands (`manage.py stripe_sandbox`).

    Only the local and test settings install it: production offers no development command.
    """

    name = "config.devstack"
    label = "devstack"
    verbose_name = "Development stack"
