"""The numbers of a replay (per message type and outcome, declarations by expected and actual state,
totals) computed once, then printed as rich tables and written into the JSON and HTML reports."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .compare import describe_expect
from .records import DeclarationRecord, ReplayResult

SHOWN_MISMATCHES = 20


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: a latency some request really had, not an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _latencies(values: Sequence[float]) -> dict[str, float | None]:
    return {f"p{p}": _ms(percentile(values, p)) for p in (50, 95, 99)}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def actual_state(d: DeclarationRecord) -> str:
    if d.state is None:
        return "unknown" if d.polls else "not read"
    text = f"{d.state} {d.code}" if d.state == "rejected" and d.code else d.state
    return text if d.final else f"{text} (not final)"


def summarise(result: ReplayResult) -> dict[str, Any]:
    by_type: dict[tuple[str, str], dict[str, Any]] = {}
    for f in result.files:
        row = by_type.setdefault((f.item.message_type or "?", f.outcome), {"latencies": [], "count": 0, "mismatches": 0})
        row["count"] += 1
        row["mismatches"] += f.mismatch is not None
        if f.latency_ms is not None:
            row["latencies"].append(f.latency_ms)
    files = [{"messageType": t, "outcome": o, "count": r["count"], "mismatches": r["mismatches"], **_latencies(r["latencies"])}
             for (t, o), r in sorted(by_type.items())]

    by_state: dict[tuple[str, str], dict[str, int]] = {}
    for d in result.declarations:
        expected = describe_expect(d.item.expect) if result.compared_declarations else "(not compared)"
        row = by_state.setdefault((expected, actual_state(d)), {"count": 0, "mismatches": 0})
        row["count"] += 1
        row["mismatches"] += d.mismatch is not None
    declarations = [{"expected": e, "actual": a, **r} for (e, a), r in sorted(by_state.items())]

    latencies = [f.latency_ms for f in result.files if f.latency_ms is not None]
    outcomes = {o: sum(f.outcome == o for f in result.files) for o in ("accepted", "rejected", "error")}
    totals = {
        "files": len(result.files), **outcomes,
        "fileMismatches": sum(m.kind == "file" for m in result.mismatches),
        "declarations": len(result.declarations),
        "declarationsFinal": sum(d.final for d in result.declarations),
        "declarationMismatches": sum(m.kind == "declaration" for m in result.mismatches),
        "mismatches": len(result.mismatches),
        "durationS": round(result.duration_s, 3), "filingS": round(result.filing_s, 3),
        "filesPerS": round(len(latencies) / result.filing_s, 2) if result.filing_s > 0 else None,
        "latencyMs": _latencies(latencies),
    }
    out = {"files": files, "declarations": declarations, "totals": totals}
    export = export_figures(result)
    if export is not None:
        out["export"] = export
    return out


EXPORT_TYPES = frozenset({"303", "403", "505", "507", "509", "603", "605", "607", "213", "215", "701"})


def export_figures(result: ReplayResult) -> dict[str, Any] | None:
    """The export half of a run (CEB.md §8): files by phase of the lifecycle, declarations by final
    state (returns by extent), summaries by result; None when the run filed no export message."""
    files = [f for f in result.files if f.item.message_type in EXPORT_TYPES]
    if not files:
        return None
    decls = [d for d in result.declarations if d.item.kind == "declaration"
             and any(f.item.declaration == d.item.key or d.item.key in f.item.concerns for f in files)]
    sums = [d for d in result.declarations if d.item.kind == "summary"]

    def state(d: DeclarationRecord) -> str:
        return f"returned {d.extent}" if d.state == "returned" and d.extent else actual_state(d)

    return {
        "files": len(files), "accepted": sum(f.outcome == "accepted" for f in files),
        "rejected": sum(f.outcome == "rejected" for f in files),
        "filesByType": dict(sorted((t, sum(f.item.message_type == t for f in files)) for t in
                                   {f.item.message_type for f in files})),
        "declarations": len(decls), "byState": dict(sorted(Counter(state(d) for d in decls).items())),
        "departed": sum(d.state == "departed" for d in decls), "returned": sum(d.state == "returned" for d in decls),
        "summaries": len(sums), "summariesByState": dict(sorted(Counter(actual_state(d) for d in sums).items())),
        "mismatches": sum(d.mismatch is not None for d in (*decls, *sums)) + sum(f.mismatch is not None for f in files),
    }


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def render(result: ReplayResult, stats: dict[str, Any], console: Console) -> None:
    """Print the tables; every value goes in as Text, so a response's brackets are never read as markup."""
    files = Table(title=f"Replay against {result.target}: files", title_justify="left")
    for name in ("type", "outcome", "count", "mismatches", "p50 ms", "p95 ms", "p99 ms"):
        files.add_column(name, justify="left" if name in ("type", "outcome") else "right")
    for row in stats["files"]:
        style = "red" if row["mismatches"] else None
        files.add_row(*(Text(_num(row[k]), style=style) for k in ("messageType", "outcome", "count", "mismatches", "p50", "p95", "p99")))
    console.print(files)

    if stats["declarations"]:
        decls = Table(title="Declarations: expected vs actual state", title_justify="left")
        for name in ("expected", "actual", "count", "mismatches"):
            decls.add_column(name, justify="right" if name in ("count", "mismatches") else "left")
        for row in stats["declarations"]:
            style = "red" if row["mismatches"] else None
            decls.add_row(*(Text(_num(row[k]), style=style) for k in ("expected", "actual", "count", "mismatches")))
        console.print(decls)

    export = stats.get("export")
    if export:
        console.print(Text(
            f"export: {export['files']} files ({export['accepted']} accepted, {export['rejected']} rejected); "
            f"{export['declarations']} declarations: " + ", ".join(f"{n} {s}" for s, n in export["byState"].items())
            + f"; {export['summaries']} summaries: " + (", ".join(f"{n} {s}" for s, n in export["summariesByState"].items())
                                                     or "-")))
    t = stats["totals"]
    lat = t["latencyMs"]
    line = (f"{t['files']} files: {t['accepted']} accepted, {t['rejected']} rejected, {t['error']} not filed; "
            f"{t['declarations']} declarations, {t['declarationsFinal']} final; "
            f"{t['mismatches']} mismatches ({t['fileMismatches']} files, {t['declarationMismatches']} declarations); "
            f"latency p50 {_num(lat['p50'])} / p95 {_num(lat['p95'])} / p99 {_num(lat['p99'])} ms; "
            f"filing {t['filingS']:g} s, {_num(t['filesPerS'])} files/s; total {t['durationS']:g} s")
    console.print(Text(line, style="bold red" if t["mismatches"] or t["error"] else "bold green"))
    for note in result.notes:
        console.print(Text(f"note: {note}", style="yellow"))

    if result.mismatches:
        shown = result.mismatches[:SHOWN_MISMATCHES]
        more = len(result.mismatches) - len(shown)
        title = f"Mismatches (first {len(shown)} of {len(result.mismatches)})" if more else "Mismatches"
        table = Table(title=title, title_justify="left")
        for name in ("file / declaration", "expected", "got"):
            table.add_column(name, overflow="fold")
        for m in shown:
            table.add_row(Text(m.name), Text(m.expected), Text(m.got, style="red"))
        console.print(table)
    errors = result.errors
    if errors and not result.has_manifest:
        table = Table(title=f"Not filed ({len(errors)})", title_justify="left")
        table.add_column("file", overflow="fold")
        table.add_column("why", overflow="fold")
        for f in errors[:SHOWN_MISMATCHES]:
            table.add_row(Text(f.item.file), Text(f.message or "-", style="red"))
        console.print(table)
