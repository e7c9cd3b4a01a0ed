"""The impact dashboard: aggregated figures as charts, tables and CSV (staff and associations)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _

from web.extensions import db_session
from web.permissions import IMPACT_ROLES, roles_required
from web.services.charts import Series, horizontal_bars, vertical_bars
from web.services.impact import (
    Period,
    Table,
    first_activations,
    proposals_per_month,
    skills_by_category,
    territory_choices,
    to_csv,
)
from web.services.queries import row_id

bp = Blueprint("impact", __name__, url_prefix="/impact")


def _filters() -> tuple[int | None, Period]:
    period = Period.parse(request.args.get("debut"), request.args.get("fin"), date.today())
    return row_id(request.args.get("quartier")), period


def _table(name: str, territory_id: int | None, period: Period) -> tuple[Table, str]:
    """One chart's table and the header of its first column."""
    session = db_session()
    if name == "competences":
        return skills_by_category(session, territory_id, date.today()), _("Savoir-faire")
    if name == "propositions":
        return proposals_per_month(session, territory_id, period), _("Mois")
    if name == "activations":
        return first_activations(session, territory_id, period), _("Mois")
    abort(404)


CHARTS = ("competences", "propositions", "activations")
FILTERS = ("quartier", "debut", "fin")


@bp.get("/")
@roles_required(*IMPACT_ROLES)
def dashboard() -> Any:
    territory_id, period = _filters()
    tables = {name: _table(name, territory_id, period) for name in CHARTS}
    skills, months, first = (tables[k][0] for k in ("competences", "propositions", "activations"))
    charts = {
        "competences": horizontal_bars(
            _("Savoir-faire révélés, par catégorie et par quartier"),
            _("Nombre de personnes ayant au moins un savoir-faire de chaque catégorie, par quartier. "
              "Les nombres de 1 à 4 sont masqués (« < 5 »)."),
            skills.rows, [Series(name, skills.column(j)) for j, name in enumerate(skills.columns)]),
        "propositions": vertical_bars(
            _("Propositions par mois"),
            _("Propositions faites, validées, acceptées et réalisées, chaque mois. "
              "Les nombres de 1 à 4 sont masqués (« < 5 »), et parfois un autre du même mois "
              "(« masqué »)."),
            months.rows, [Series(name, months.column(j)) for j, name in enumerate(months.columns)]),
        "activations": vertical_bars(
            _("Personnes qui ont dit oui pour la première fois, par mois"),
            _("Nombre de personnes qui ont dit oui à une proposition pour la première fois, chaque mois. "
              "Les nombres de 1 à 4 sont masqués (« < 5 »), et parfois un autre du même mois "
              "(« masqué »)."),
            first.rows, [Series(first.columns[0], first.column(0))]),
    }
    return render_template("impact/dashboard.html", tables=tables, charts=charts,
                           territories=territory_choices(db_session()), territory_id=territory_id,
                           period=period,
                           args={k: v for k, v in request.args.items() if k in FILTERS})


@bp.get("/<name>.csv")
@roles_required(*IMPACT_ROLES)
def export(name: str) -> Any:
    territory_id, period = _filters()
    table, header = _table(name, territory_id, period)
    return Response(to_csv(table, header), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="relais-impact-{name}.csv"'})
