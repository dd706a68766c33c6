"""
The ops dashboard's panels: figures an operator reads at a glance, each linking to the filtered list
behind it (`OpsAdminSite.dashboard_view` renders them).

The dashboard knows no app. Each app registers its panels from its admin module, where the lists they
link to live: payments (today's payments, the amount at risk, the provider's breaker), the outbox (dead
messages); webhooks (parked events), reconciliation (open mismatches) and the beat jobs (last runs)
register theirs the same way. A panel is shown, and its queries run, only for a user who holds its
permission; each must stay cheap (an indexed query or two, however large the tables grow).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    url: str = ""  # the filtered list behind the figure; empty when there is none (or the user may not see it)
    attention: bool = False  # something for a person to look at (dead rows, money at risk, an open breaker)


@dataclass(frozen=True)
class Panel:
    title: str
    permission: str  # "app_label.codename": who may see it
    figures: Callable[[HttpRequest, datetime], list[Figure]]
    description: str = ""
    order: int = 100  # lower first


_PANELS: dict[str, Panel] = {}


def dashboard_panel_register(*, key: str, panel: Panel) -> None:
    """Add (or replace) the panel registered under `key`."""
    _PANELS[key] = panel


def dashboard_panels(*, user) -> list[Panel]:
    """Return the panels `user` may see, in order."""
    visible = (panel for panel in _PANELS.values() if user.has_perm(panel.permission))
    return sorted(visible, key=lambda panel: (panel.order, panel.title))
