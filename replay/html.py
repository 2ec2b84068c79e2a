"""The HTML report: one self-contained page (no scripts, fonts or images from elsewhere) that a tester can
mail or attach to a CI run -- the summary, an inline SVG latency histogram and every mismatch, each
with a link to its file (relative to the report) and the file itself in a collapsible ``<details>``.

Everything that comes from the set or from the target is escaped: a response excerpt is someone
else's text.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .records import FileRecord, Mismatch, ReplayResult
from .summary import percentile

EMBED_LIMIT = 64 * 1024  # bytes of a mismatched file shown inline
BINS = 24

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;margin:2em;color:#1d2330}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #dde;padding-bottom:.2em}
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #d6d9e0;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f4f8}td.n{text-align:right;font-variant-numeric:tabular-nums}tr.bad td{background:#fff0f0}
.ok{color:#17703a;font-weight:600}.bad{color:#b3261e;font-weight:600}.muted{color:#667}
.mm{border:1px solid #e3c4c4;border-radius:6px;padding:.6em .9em;margin:.7em 0;background:#fffafa}
.mm h3{font-size:1em;margin:0 0 .3em;word-break:break-all}pre{background:#f6f7f9;padding:.6em;overflow:auto;white-space:pre-wrap;
word-break:break-all;max-height:28em;margin:.3em 0}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:.3em 0}
dt{color:#556;font-weight:600}dd{margin:0;word-break:break-word}svg text{font-size:11px;fill:#445}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def histogram_svg(latencies: list[float], width: int = 720, height: int = 220) -> str:
    """Latencies (ms) as bars; the long tail past three times the p99 goes into one last bar, so that
    one slow request does not squash the rest into a single column."""
    if not latencies:
        return '<p class="muted">no latencies recorded</p>'
    ordered = sorted(latencies)
    p99 = percentile(ordered, 99) or 0.0
    top = ordered[-1]
    tail = top > 3 * p99 and p99 > 0
    upper = p99 * 1.2 if tail else top
    upper = upper if upper > 0 else 1.0
    bins = BINS + (1 if tail else 0)
    step = upper / BINS
    counts = [0] * bins
    for v in ordered:
        i = int(v / step) if v < upper else BINS - 1 if not tail else BINS
        counts[min(i, bins - 1)] += 1
    left, bottom, right, top_pad = 48, 34, 12, 12
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    bar_w = plot_w / bins
    most = max(counts)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'role="img" aria-label="latency histogram">')
    parts = [svg,
             f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - right}" y2="{top_pad + plot_h}" stroke="#889"/>',
             f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#889"/>',
             f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end">{most}</text>',
             f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end">0</text>',
             f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle">latency (ms)</text>']
    for i, n in enumerate(counts):
        lo = i * step
        label = f"≥ {lo:.1f} ms" if tail and i == BINS else f"{lo:.1f}–{lo + step:.1f} ms"
        h = plot_h * n / most if most else 0
        x = left + i * bar_w
        colour = "#c0504d" if tail and i == BINS else "#4f81bd"
        parts.append(f'<rect x="{x + 1:.1f}" y="{top_pad + plot_h - h:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{_e(label)}: {n}</title></rect>')
        if i % 4 == 0 or (tail and i == BINS):
            tick = f"≥{lo:.0f}" if tail and i == BINS else f"{lo:.0f}"
            parts.append(f'<text x="{x:.1f}" y="{top_pad + plot_h + 14}" text-anchor="start">{_e(tick)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _link(path: Path, report_dir: Path) -> str:
    try:
        rel = os.path.relpath(path, report_dir)
    except ValueError:  # another drive (Windows): no relative path exists
        rel = str(path)
    return quote(Path(rel).as_posix(), safe="/")


def _embedded(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f'<p class="muted">cannot read the file: {_e(exc)}</p>'
    cut = len(data) > EMBED_LIMIT
    text = data[:EMBED_LIMIT].decode("utf-8", errors="replace")
    more = f" (first {EMBED_LIMIT // 1024} KiB of {len(data)} bytes)" if cut else ""
    return f"<details><summary>the file{_e(more)}</summary><pre>{_e(text)}</pre></details>"


def _mismatch(m: Mismatch, files: dict[str, FileRecord], report_dir: Path) -> str:
    rec = files.get(m.name) if m.kind == "file" else None
    if rec is not None:
        title = f'<a href="{_e(_link(rec.item.path, report_dir))}">{_e(m.name)}</a>'
        facts = [("declaration", rec.item.declaration), ("message type", rec.item.message_type),
                 ("sender", rec.item.sender), ("fault", rec.item.fault), ("expected", m.expected), ("got", m.got),
                 ("HTTP status", rec.status), ("latency", f"{rec.latency_ms:.1f} ms" if rec.latency_ms is not None else None)]
        answer = rec.excerpt or rec.message
        body = f"<pre>{_e(answer)}</pre>" if answer else ""
        body += _embedded(rec.item.path)
    else:
        title = f"declaration {_e(m.name)}"
        facts = [("expected", m.expected), ("got", m.got)]
        body = f"<pre>{_e(m.detail)}</pre>" if m.detail else ""
    rows = "".join(f"<dt>{_e(k)}</dt><dd{' class=bad' if k == 'got' else ''}>{_e(v)}</dd>"
                   for k, v in facts if v is not None)
    return f'<div class="mm"><h3>{title}</h3><dl>{rows}</dl>{body}</div>'


def _table(head: list[str], rows: list[list[Any]], bad: list[bool], numeric: set[int]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    out = []
    for row, is_bad in zip(rows, bad):
        cells = "".join(f'<td class="n">{_e(_num(v))}</td>' if i in numeric else f"<td>{_e(_num(v))}</td>"
                        for i, v in enumerate(row))
        out.append(f'<tr class="bad">{cells}</tr>' if is_bad else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(out)}</tbody></table>"


def render_html(result: ReplayResult, summary: dict[str, Any], report_dir: Path) -> str:
    t = summary["totals"]
    ok = result.exit_code == 0
    verdict = ('<span class="ok">as expected</span>' if ok else
               f'<span class="bad">{t["mismatches"]} mismatch(es), {t["error"]} file(s) not filed</span>')
    opts = result.options
    options = (f"concurrency {opts.get('concurrency')}, rate {opts.get('rate') or 'unlimited'}, "
               f"shuffle {'on' if opts.get('shuffle') else 'off'} (seed {opts.get('seed')}), "
               f"wait-final {opts.get('waitFinal') if opts.get('waitFinal') is not None else 'not given'}")
    info = [("target", result.target), ("started", result.started_at), ("finished", result.finished_at),
            ("duration", f"{result.duration_s:.2f} s (filing {result.filing_s:.2f} s)"),
            ("sources", ", ".join(opts.get("paths", []))),
            ("options", options),
            ("exit status", result.exit_code)]
    head = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in info)
    lat = t["latencyMs"]
    totals = (f"{t['files']} files: {t['accepted']} accepted, {t['rejected']} rejected, {t['error']} not filed · "
              f"{t['declarations']} declarations, {t['declarationsFinal']} final · {t['mismatches']} mismatches "
              f"({t['fileMismatches']} files, {t['declarationMismatches']} declarations) · latency p50 {_num(lat['p50'])} / "
              f"p95 {_num(lat['p95'])} / p99 {_num(lat['p99'])} ms · {_num(t['filesPerS'])} files/s")
    files_table = _table(["type", "outcome", "count", "mismatches", "p50 ms", "p95 ms", "p99 ms"],
                         [[r["messageType"], r["outcome"], r["count"], r["mismatches"], r["p50"], r["p95"], r["p99"]]
                          for r in summary["files"]], [bool(r["mismatches"]) for r in summary["files"]], {2, 3, 4, 5, 6})
    decl_table = _table(["expected", "actual", "count", "mismatches"],
                        [[r["expected"], r["actual"], r["count"], r["mismatches"]] for r in summary["declarations"]],
                        [bool(r["mismatches"]) for r in summary["declarations"]], {2, 3}) if summary["declarations"] else \
        '<p class="muted">no declarations</p>'
    notes = "".join(f"<li>{_e(n)}</li>" for n in result.notes)
    by_name = {f.item.file: f for f in result.files}
    mismatches = "".join(_mismatch(m, by_name, report_dir) for m in result.mismatches) or '<p class="ok">none</p>'
    errors = [f for f in result.errors if f.mismatch is None]
    not_filed = ""
    if errors:
        rows = [[f.item.file, f.item.sender, f.message] for f in errors]
        not_filed = f"<h2>Not filed ({len(errors)})</h2>" + _table(["file", "sender", "why"], rows, [True] * len(rows), set())
    latencies = [f.latency_ms for f in result.files if f.latency_ms is not None]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>swx replay: {_e(result.target)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>swx replay — {verdict}</h1><dl>{head}</dl><p>{_e(totals)}</p>"
        + (f"<ul>{notes}</ul>" if notes else "")
        + f"<h2>Files by message type and outcome</h2>{files_table}"
        + f"<h2>Declarations: expected vs actual state</h2>{decl_table}"
        + f"<h2>Latency of filings ({len(latencies)})</h2>{histogram_svg(latencies)}"
        + f"<h2>Mismatches ({len(result.mismatches)})</h2>{mismatches}{not_filed}"
        + "</body></html>\n"
    )


def write_html(result: ReplayResult, summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result, summary, path.resolve().parent), encoding="utf-8")
