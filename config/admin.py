"""Admin pieces shared by the apps, and the admin site itself (with the ops dashboard)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from config.dashboard import dashboard_panels


class ReadOnlyMixin:
    """Rows that are evidence (timeline, outbox, webhook events): viewable, never added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class BoundedDatesChangeList(ChangeList):
    """
    A date in the URL that no datetime can hold is a bad filter, not a server error.

    Django answers `?created_at__year=abc` with the changelist and `?e=1`, but lets OverflowError (a day
    past a C long) and the end of year 9999 (its upper bound is computed outside Django's try) escape.
    """

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as error:
            raise IncorrectLookupParameters(error) from error


class BoundedDatesMixin:
    def get_changelist(self, request, **kwargs):
        changelist = super().get_changelist(request, **kwargs)
        if issubclass(changelist, BoundedDatesChangeList):
            return changelist
        return type(f"BoundedDates{changelist.__name__}", (BoundedDatesChangeList, changelist), {})


class WellFormedSelectionMixin:
    """An action's selected ids must be keys of the model: anything else is a 400, not a 500.

    Django filters `pk__in` with the checkboxes' values as sent, so a tampered `_selected_action`
    (`abc` for an integer key, a NUL byte for any) raised in the query: a 500, on every changelist
    with an action. The selection is checked as a whole before any action sees it.
    """

    def response_action(self, request, queryset):
        pk = self.model._meta.pk
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                if "\x00" in value:
                    raise ValidationError("NUL byte")
                pk.to_python(value)
            except ValidationError as error:
                raise BadRequest("A selected id is not one of this list's ids.") from error
        return super().response_action(request, queryset)


class OpsAdminSite(admin.AdminSite):
    """The admin site (`admin.site`, through config.apps.OpsAdminConfig), with the ops dashboard."""

    site_header = "Payments operations"
    site_title = "Payments operations"
    index_template = "admin/ops/index.html"

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every model admin, ours and third parties' (axes, auth), gets the bounded-dates changelist and
        the selected-ids check of its actions."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, BoundedDatesMixin):
            admin_class = type(admin_class.__name__, (BoundedDatesMixin, admin_class), {})
        if not issubclass(admin_class, WellFormedSelectionMixin):
            admin_class = type(admin_class.__name__, (WellFormedSelectionMixin, admin_class), {})
        return super().register(model_or_iterable, admin_class, **options)

    def get_urls(self):
        return [path("dashboard/", self.admin_view(self.dashboard_view), name="ops_dashboard"), *super().get_urls()]

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        may_see_dashboard = bool(dashboard_panels(user=request.user))
        url = reverse("admin:ops_dashboard", current_app=self.name) if may_see_dashboard else ""
        return super().index(request, {"ops_dashboard_url": url, **(extra_context or {})})

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """The figures of every panel the user may see; a user who may see none is refused the page."""
        panels = dashboard_panels(user=request.user)
        if not panels:
            raise PermissionDenied
        now = timezone.now()
        request.current_app = self.name
        context = {
            **self.each_context(request),
            "title": "Dashboard",
            "now": now,
            "panels": [(panel, panel.figures(request, now)) for panel in panels],
        }
        return TemplateResponse(request, "admin/ops/dashboard.html", context)
