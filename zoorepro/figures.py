"""Figures and HTML tables of one result table, for Snakemake's report (`make report`) and DVC's plots.

`python -m zoorepro.figures --table results/mini/<model>_<target>.csv --out results/mini/report/<model>_<target>`
verifies the table first (zoorepro/tablecheck.py: an invalid table gets no figures, as the audit
does not count it), then writes into the folder:

* `claims.svg` and `claims.html`: every claim row, reproduced ÷ reported per claim coloured by its
  verdict, and the table with both numbers, the tolerance, the verdict and why;
* `throughput.svg` / `latency.svg`: the measured curves against batch size, one panel per unit, the
  claimed points of every chip overlaid (only when the table has rows with a batch size);
  `throughput.csv` / `latency.csv` hold the same points, long form (batch_size, value, series), for
  `dvc plots` (always written, header only when there is nothing to draw);
* `agreement.svg` / `agreement.html`: rows that measure two implementations or two chips against each
  other (kind `parity`, and the metrics a model's pipeline.py names in `AGREEMENT_METRICS`), when the
  table has any with a value;
* `planted.html`: the mini generator's planted claims and how the chain came out against them;
* `provenance.html`: commit, host, packages, toolchain and the raw outputs' sha256 the rows come from.

Figures are drawn with matplotlib (Agg, SVG without a date and with a fixed hash salt, so the same
table gives the same bytes).
"""
from __future__ import annotations

import argparse
import csv
import html
import io
import json
import sys
from collections import defaultdict
from pathlib import Path

from . import models
from .errors import ZooreproError
from .fsutil import atomic_write_text
from .tablecheck import verify_table
from .verdicts import (
    BETTER,
    IMPLAUSIBLE,
    NO_CLAIM,
    NOT_COMPARABLE,
    NOT_RUN,
    OUT_OF_TOLERANCE,
    REPRODUCED,
)

VERDICT_COLOURS = {REPRODUCED: "#2e7d32", BETTER: "#00838f", OUT_OF_TOLERANCE: "#c62828", IMPLAUSIBLE: "#8e24aa",
                   NOT_COMPARABLE: "#ef8f00", NOT_RUN: "#9e9e9e", NO_CLAIM: "#9e9e9e"}
CURVE_COLUMNS = ("batch_size", "value", "unit", "series")
CSS = ("body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
       "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
       "th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}")


def _num(value: str) -> float | None:
    return None if value == "" else float(value)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"svg.hashsalt": "zoorepro", "font.size": 9})
    return plt


def _save(fig, path: Path) -> None:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_text(path, buf.getvalue())


def _html(title: str, header: list[str], rows: list[list[str]], intro: str = "",
          verdict_column: int | None = None) -> str:
    """A self-contained HTML page with one table; numeric cells right-aligned, the verdict coloured."""
    def cell(i: int, value: str) -> str:
        style = ""
        if i == verdict_column and value in VERDICT_COLOURS:
            style = f' style="color:{VERDICT_COLOURS[value]};font-weight:bold"'
        numeric = value.replace(".", "", 1).replace("-", "", 1).replace("e", "", 1).isdigit()
        return f"<td{' class=num' if numeric else ''}{style}>{html.escape(value)}</td>"
    body = "\n".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return (f"<!doctype html>\n<html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n<h3>{html.escape(title)}</h3>\n"
            + (f"<p>{html.escape(intro)}</p>\n" if intro else "")
            + f"<table>\n<tr>{head}</tr>\n{body}\n</table>\n</body></html>\n")


def claim_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["claim_id"]]


def claims_figure(name: str, rows: list[dict], path: Path) -> bool:
    """Reproduced ÷ reported per claim (log scale), coloured by verdict; claims with no reproduced
    number or a reported 0 cannot be drawn as a ratio and are counted in the title."""
    drawn = [r for r in claim_rows(rows) if r["reproduced"] != "" and _num(r["reported"])]
    if not drawn:
        return False
    skipped = len(claim_rows(rows)) - len(drawn)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.22 * len(drawn)))
    labels = [f"{r['claim_id']}" + (f" (bs{r['batch_size']})" if r["batch_size"] and r["claim_id"].count(".bs") == 0
                                    and r["kind"] == "throughput" else "") for r in drawn]
    ratios = [float(r["reproduced"]) / float(r["reported"]) for r in drawn]
    for verdict in VERDICT_COLOURS:
        idx = [i for i, r in enumerate(drawn) if r["verdict"] == verdict]
        if idx:
            ax.scatter([ratios[i] for i in idx], idx, color=VERDICT_COLOURS[verdict], label=verdict, zorder=3)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(drawn)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("reproduced ÷ reported (1 = the claimed number)")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title(f"{name}: reproduced against reported, {len(drawn)} claims"
                 + (f" ({skipped} without a reproduced number or with a reported 0 not drawn)" if skipped else ""))
    _save(fig, path)
    return True


def claims_table(name: str, rows: list[dict]) -> str:
    header = ["claim", "claim target", "bs", "metric", "reported", "reproduced", "unit", "tolerance", "verdict",
              "note", "source"]
    body = [[r["claim_id"], r["claim_target"], r["batch_size"], r["metric"], r["reported"], r["reproduced"], r["unit"],
             r["tolerance"], r["verdict"], r["note"], r["source"]] for r in claim_rows(rows)]
    return _html(f"{name}: every claim", header, body, verdict_column=8)


def curve_points(rows: list[dict], kind: str) -> list[dict]:
    """Long-form points against batch size: measured series `<metric>` and claimed series
    `claimed on <chip>: <metric>`, each with its unit, each (series, unit, batch size) once."""
    points: dict[tuple, float] = {}
    for r in rows:
        if r["kind"] != kind or r["batch_size"] == "":
            continue
        bs = int(r["batch_size"])
        if r["reproduced"] != "":
            points[(r["metric"], r["unit"], bs)] = float(r["reproduced"])
        if r["reported"] != "" and r["claim_target"]:
            points[(f"claimed on {r['claim_target']}: {r['metric']}", r["unit"], bs)] = float(r["reported"])
    return [{"batch_size": bs, "value": v, "unit": unit, "series": s} for (s, unit, bs), v in sorted(points.items())]


def curve_csv(points: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**p, "value": f"{p['value']:.6g}"} for p in points)
    return buf.getvalue()


def curve_figure(name: str, kind: str, points: list[dict], path: Path) -> bool:
    """One panel per unit: measured series as lines with markers, claimed points as large hollow
    markers, batch size on a log2 axis."""
    if not points:
        return False
    series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for p in points:
        series[(p["unit"], p["series"])].append((p["batch_size"], p["value"]))
    units = sorted({unit for unit, _ in series})
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(units), figsize=(4.2 * len(units) + 1.5, 3.4), squeeze=False)
    palette = plt.get_cmap("tab10").colors
    colours = {s: palette[i % len(palette)] for i, s in enumerate(sorted({s for _, s in series}))}
    for ax, unit in zip(axes[0], units):
        sizes = sorted({bs for (u, _), xy in series.items() if u == unit for bs, _ in xy})
        for (u, s), xy in sorted(series.items()):
            if u != unit:
                continue
            xs, ys = zip(*sorted(xy))
            if s.startswith("claimed on "):
                ax.scatter(xs, ys, s=70, facecolors="none", edgecolors=[colours[s]], linewidths=1.8, label=s, zorder=3)
            else:
                ax.plot(xs, ys, marker="o", color=colours[s], label=s, zorder=2)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(bs) for bs in sizes])
        ax.minorticks_off()
        ax.set_xlabel("batch size")
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    fig.suptitle(f"{name}: {kind} against batch size (claimed points hollow)")
    _save(fig, path)
    return True


def agreement_rows(rows: list[dict], model: str) -> list[dict]:
    named = set(getattr(models.pipeline(model), "AGREEMENT_METRICS", ()))
    return [r for r in rows if r["reproduced"] != "" and (r["kind"] == "parity" or r["metric"] in named)]


def agreement_figure(name: str, rows: list[dict], path: Path) -> bool:
    if not rows:
        return False
    by_unit: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_unit[r["unit"]].append(r)
    plt = _pyplot()
    fig, axes = plt.subplots(len(by_unit), 1, figsize=(8, 0.8 + sum(0.3 * len(v) + 0.6 for v in by_unit.values())),
                             squeeze=False, layout="constrained")
    for ax, (unit, group) in zip(axes[:, 0], sorted(by_unit.items())):
        labels = [r["metric"] + (f" (bs{r['batch_size']})" if r["batch_size"] else "") for r in group]
        values = [float(r["reproduced"]) for r in group]
        ax.barh(range(len(group)), values, color=[VERDICT_COLOURS.get(r["verdict"], "#607d8b") for r in group])
        for i, r in enumerate(group):
            if r["reported"] != "":
                ax.scatter([float(r["reported"])], [i], marker="|", s=200, color="black", zorder=3)
        ax.set_yticks(range(len(group)), labels)
        ax.invert_yaxis()
        ax.set_xlabel(unit + (" (claimed value: black tick)" if any(r["reported"] for r in group) else ""))
        if unit == "abs" and min(values) > 0 and max(values) / min(values) > 100:
            ax.set_xscale("log")
    fig.suptitle(f"{name}: agreement between implementations or chips")
    _save(fig, path)
    return True


def agreement_table(name: str, rows: list[dict]) -> str:
    header = ["metric", "bs", "precision", "value", "unit", "reported", "verdict", "note"]
    body = [[r["metric"], r["batch_size"], r["precision"], r["reproduced"], r["unit"], r["reported"], r["verdict"],
             r["note"]] for r in rows]
    return _html(f"{name}: agreement", header, body, verdict_column=6)


def planted_table(name: str, rows: list[dict], provenance: dict) -> str | None:
    record = provenance.get("planted")
    if not record:
        return None
    ids = {c["id"] for c in record["claims"]}
    body = [[r["claim_id"], r["metric"], r["reported"], r["reproduced"], r["unit"], r["tolerance"], r["verdict"], r["note"]]
            for r in rows if r["claim_id"] in ids]
    intro = (f"{len(ids)} planted claims from {record['file']} (sha256 {record['sha256'][:16]}…): values the mini "
             "generator computed from its own model and data, independently of the pipeline.")
    return _html(f"{name}: planted claims", ["claim", "metric", "planted", "reproduced", "unit", "tolerance",
                                             "verdict", "note"], body, intro, verdict_column=6)


def provenance_table(name: str, provenance: dict) -> str:
    git, host, run = provenance.get("git", {}), provenance.get("host", {}), provenance.get("run", {})
    toolchain = run.get("toolchain", {})
    rows = [["commit", f"{git.get('commit', '?')}{' (dirty)' if git.get('dirty') else ''}"],
            *[[f"host {k}", str(v)] for k, v in sorted(host.items())],
            *[[f"run {k}", str(v)] for k, v in sorted(run.items()) if k != "toolchain"],
            *[[f"toolchain {k}", json.dumps(v) if not isinstance(v, str) else v] for k, v in sorted(toolchain.items())],
            *[[f"package {k}", str(v)] for k, v in sorted(provenance.get("packages", {}).items())],
            *[[f"raw {k}", f"{v['sha256']} ({v['files']} file{'s' if v['files'] != 1 else ''})"]
              for k, v in sorted(provenance.get("raw", {}).items())],
            ["table sha256", provenance.get("table", {}).get("sha256", "?")]]
    return _html(f"{name}: provenance", ["what", "value"], rows)


def results_root(table: Path) -> Path:
    """results/ for results/<model>_<target>.csv, results/mini/... and results/shape/...."""
    return table.parent.parent if table.parent.name in ("mini", "shape") else table.parent


def write_figures(table: Path, out: Path) -> list[Path]:
    """Verify `table`, then write its figures and HTML tables into `out`; returns what was written."""
    check = verify_table(table, results_root(table))
    if not check.valid:
        raise ZooreproError(f"{table}: not a valid table, no figures ({'; '.join(check.problems)})")
    name = f"{table.parent.name}/{table.stem}" if table.parent.name in ("mini", "shape") else table.stem
    model = check.provenance["run"]["model"]
    rows = check.rows
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # a figure that no longer applies must not linger from an earlier table
        if old.suffix in (".svg", ".html", ".csv"):
            old.unlink()
    written = []

    def text(file: str, content: str | None) -> None:
        if content is not None:
            atomic_write_text(out / file, content)
            written.append(out / file)

    if claims_figure(name, rows, out / "claims.svg"):
        written.append(out / "claims.svg")
    text("claims.html", claims_table(name, rows))
    for kind in ("throughput", "latency"):
        points = curve_points(rows, kind)
        text(f"{kind}.csv", curve_csv(points))
        if curve_figure(name, kind, points, out / f"{kind}.svg"):
            written.append(out / f"{kind}.svg")
    agreement = agreement_rows(rows, model)
    if agreement_figure(name, agreement, out / "agreement.svg"):
        written.append(out / "agreement.svg")
        text("agreement.html", agreement_table(name, agreement))
    text("planted.html", planted_table(name, rows, check.provenance))
    text("provenance.html", provenance_table(name, check.provenance))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoorepro.figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, type=Path, help="a result table, e.g. results/mini/<model>_cpu.csv")
    parser.add_argument("--out", required=True, type=Path, help="the folder to write the figures into")
    args = parser.parse_args(argv)
    try:
        written = write_figures(args.table, args.out)
    except ZooreproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
