from django.contrib.admin.apps import AdminConfig


class OpsAdminConfig(AdminConfig):
    """django.contrib.admin with our site as `admin.site`: the ops dashboard is one of its views."""

    default_site = "config.admin.OpsAdminSite"
