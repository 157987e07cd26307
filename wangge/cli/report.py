"""What the commands print: summaries, findings, feasibility and violations as rich tables."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from wangge.cli._app import err, out


def print_ingest(result, target: Path, seconds: float) -> None:
    table = Table(title="wangge ingest: summary", show_header=False)
    for key, value in result.summary.items():
        table.add_row(key, escape(f"{value:,}" if isinstance(value, int) else str(value)))
    out.print(table)
    rules = Table(title="How each building's residential use was decided (first rule that applies)")
    rules.add_column("rule")
    rules.add_column("buildings", justify="right")
    rules.add_column("households", justify="right")
    for rule, row in result.rules.iterrows():
        rules.add_row(rule, f"{row['buildings']:,}", f"{row['households']:,}")
    out.print(rules)
    if result.notes:
        notes = Table(title="Repairs and warnings")
        notes.add_column("what")
        notes.add_column("count", justify="right")
        for key, value in sorted(result.notes.items()):
            notes.add_row(key, f"{value:,}")
        out.print(notes)
    print_given(result.tables)
    out.print(f"wrote [bold]{escape(str(target))}[/] in {seconds:.2f} s")
    out.print(f"Data: {escape(str(result.summary.get('attribution', '')))}", style="dim")


def print_given(tables: dict) -> None:
    """What was noticed in the user's files, and the calibration to known totals."""
    found = tables.get("findings")
    if found is not None and len(found):
        table = Table(title="Findings in the given files (all kept in the findings table)")
        for col in ("file", "kind", "count", "first"):
            table.add_column(col)
        for (source, kind), group in found.groupby(["source", "kind"], sort=False):
            first = group.iloc[0]
            where = first["code"] or first["name"] or ""
            table.add_row(
                escape(str(source)),
                kind,
                str(len(group)),
                escape(f"{where}: {first['detail']}" if where else str(first["detail"])),
            )
        out.print(table)
    cal = tables.get("calibration")
    if cal is not None and len(cal):
        table = Table(title="Calibration to known totals (estimated buildings scaled)")
        for col in ("unit", "known", "covered", "estimate → calibrated", "factor", "finding"):
            table.add_column(col)
        for row in cal.itertuples():
            table.add_row(
                escape(f"{row.level} {row.code or ''} {row.name or ''}".strip()),
                escape(str(row.known)),
                f"{float(row.coverage):.0%}",
                f"{float(row.estimated_before):,.0f} → {float(row.estimated_after):,.0f}",
                "" if row.factor != row.factor else f"{float(row.factor):.3f}",
                escape(str(row.finding or "")),
            )
        out.print(table)


def print_plan(result, violations, target: Path, seconds: float) -> None:
    from wangge.data.osm import attribution_of

    table = Table(title="wangge delineate: plan")
    cols = (
        "level",
        "units",
        "households min–max",
        "mean |dev| %",
        "mean PP",
        "road share",
        "flagged",
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "level" else "right")

    def shown(value: float, fmt: str) -> str:
        return "–" if value != value else format(value, fmt)  # no nan in a summary

    for name in ("streets", "communities", "grids", "microgrids"):
        f = result.layers[name]
        basic = f[f["flag"] != "dedicated"]  # dedicated grids are outside the bands by rule
        dedicated = len(f) - len(basic)
        table.add_row(
            name + (f" (+{dedicated} dedicated)" if dedicated else ""),
            f"{len(basic):,}",
            f"{basic['households'].min():,.0f}–{basic['households'].max():,.0f}"
            if len(basic)
            else "–",
            shown(basic["deviation_pct"].abs().mean(), ".1f"),
            shown(basic["polsby_popper"].mean(), ".2f"),
            shown(basic["road_share"].mean(), ".0%"),
            f"{(basic['flag'] != '').sum():,}",
        )
    n_vertical = len(result.layers["vertical_microgrids"])
    table.add_row("vertical micro-grid records", f"{n_vertical:,}", *[""] * 5)
    out.print(table)
    print_feasibility(result.feasibility)
    print_given({k: result.layers.get(k) for k in ("findings", "calibration")})
    print_violations(violations)
    out.print(
        f"wrote [bold]{escape(str(target))}[/], GeoJSON per level and map.html in {seconds:.2f} s"
    )
    out.print(f"Data: {escape(attribution_of(result.layers))}", style="dim")


def print_feasibility(found) -> None:
    if found is None or found.empty:
        out.print("feasibility: every building and compound fits the limits as it stands")
        return
    table = Table(title="feasibility (checked before solving)")
    for col in ("kind", "finding", "units", "action", "example"):
        table.add_column(col)
    found = found.assign(limit=found["finding"].str.split(" > ").str[-1])
    for (kind, limit), group in found.groupby(["kind", "limit"], sort=False):
        first = group.sort_values("households", ascending=False).iloc[0]
        table.add_row(
            kind,
            escape(f"> {limit}"),
            str(len(group)),
            escape(first["action"]),
            escape(f"{first['unit']} ({first['households']:g})"),
        )
    out.print(table)


def print_violations(violations) -> None:
    if violations.empty:
        out.print("validation: no violations")
        return
    counts = violations.groupby(["check", "severity"]).size()
    table = Table(title="validation")
    for col in ("check", "severity", "count", "first"):
        table.add_column(col)
    for (check, severity), n in counts.items():
        first = violations[(violations["check"] == check) & (violations["severity"] == severity)]
        row = first.iloc[0]
        table.add_row(check, severity, str(n), escape(f"{row['code']}: {row['reason']}"))
    out.print(table)


def print_job(title: str, result, seconds: float) -> None:
    table = Table(title=title, show_header=False)
    for key, value in result.summary.items():
        table.add_row(escape(key), escape(f"{value:,}" if isinstance(value, int) else str(value)))
    out.print(table)
    written = ", ".join(str(p) for p in result.maps)
    out.print(
        f"added {', '.join(result.layers)} to plan.gpkg; maps: {escape(written)} in {seconds:.2f} s"
    )
    if result.summary.get("sample data") == "yes":
        out.print(
            "[bold yellow]样例数据 SAMPLE DATA[/]: the risk register and extra facilities "
            "are generated samples (data/samples.py), not real records"
        )
    if result.attribution:  # the sources the plan was made from, as its meta names them
        out.print(f"Data: {escape(result.attribution)}", style="dim")


def plan_verdict(errors: int, what: str) -> None:
    """The last line of every command that writes a plan: when the plan breaks a rule at
    error level, say so and exit 1 (the plan is written all the same, for inspection);
    otherwise say it is valid."""
    if errors:
        err.print(
            f"[bold red]{what} breaks {errors} rule(s) at error level[/] (listed above); "
            "it was written for inspection, but it is not a valid plan",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=1)
    out.print(f"{what} is valid: no error-level violation")
