"""What users look at: the figures of every table (zoorepro/figures.py), Snakemake's HTML report of
the mini tables (`make report`), DVC's plots and metrics, and the report rendered once in headless
Chromium (skipped, with the reason, where no browser is installed).

The figure tests run on the committed mini tables (results/mini/, copied); the report, plots and
metrics tests on a copy of the suite's one cold build of the mini DAG (conftest.mini_dag), whose
`dvc repro` made the figures with the tables."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, built_copy, run

from zoorepro.errors import ZooreproError
from zoorepro.figures import write_figures
from zoorepro.report import read_table

TABLES = sorted(p.stem for p in (ROOT / "results" / "mini").glob("*.csv"))
ALWAYS = {"claims.svg", "claims.html", "planted.html", "provenance.html", "throughput.csv", "latency.csv"}


def committed(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "mini", results / "mini", ignore=shutil.ignore_patterns("report*"))
    return results


def test_every_table_gets_its_figures_and_the_same_table_the_same_bytes(tmp_path):
    results = committed(tmp_path)
    for name in TABLES:
        out = results / "mini" / "report" / name
        written = write_figures(results / "mini" / f"{name}.csv", out)
        files = {p.name for p in out.iterdir()}
        assert ALWAYS <= files == {p.name for p in written}, name
        rows = read_table(results / "mini" / f"{name}.csv")
        if any(r["kind"] == "throughput" and r["batch_size"] for r in rows):
            assert "throughput.svg" in files, name
        first = {p.name: p.read_bytes() for p in written}
        write_figures(results / "mini" / f"{name}.csv", out)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == first, f"{name}: figures not deterministic"
        claims = (out / "claims.html").read_text()
        assert all(r["claim_id"] in claims for r in rows if r["claim_id"])  # every claim row, one line each
        assert "<svg" in (out / "claims.svg").read_text()


def test_the_throughput_curve_carries_every_chips_claimed_points(tmp_path):
    results = committed(tmp_path)
    out = results / "mini" / "report" / "vilbert_cpu"
    write_figures(results / "mini" / "vilbert_cpu.csv", out)
    import csv
    points = list(csv.DictReader(open(out / "throughput.csv")))
    claimed = {(p["series"], p["batch_size"]) for p in points if p["series"].startswith("claimed on ")}
    rows = [r for r in read_table(results / "mini" / "vilbert_cpu.csv") if r["kind"] == "throughput" and r["reported"]]
    assert claimed == {(f"claimed on {r['claim_target']}: {r['metric']}", r["batch_size"]) for r in rows}
    assert {"310", "310P3"} <= {s.split()[2].rstrip(":") for s, _ in claimed}
    measured = {p["batch_size"] for p in points if p["series"] == "throughput"}
    assert measured == {r["batch_size"] for r in rows}
    svg = (out / "throughput.svg").read_text()
    assert "claimed on 310P3: throughput" in svg and "batch size" in svg
    assert "agreement.svg" in {p.name for p in out.iterdir()}  # ONNX-vs-PyTorch parity rows


def test_an_unverified_table_gets_no_figures(tmp_path):
    results = committed(tmp_path)
    table = results / "mini" / "vilbert_cpu.csv"
    table.write_text(table.read_text().replace("REPRODUCED", "BETTER", 1))
    with pytest.raises(ZooreproError, match="not a valid table.*sha256"):
        write_figures(table, results / "mini" / "report" / "vilbert_cpu")
    assert not (results / "mini" / "report" / "vilbert_cpu").exists()


@pytest.fixture(scope="module")
def built(tmp_path_factory, mini_dag) -> Path:
    """A copy of the cold build with Snakemake's report of the mini tables (what `make report` runs)."""
    repo = built_copy(mini_dag, tmp_path_factory.mktemp("report") / "repo")
    tables = run(["python", "-m", "zoorepro", "tables", "--scale", "mini"], cwd=repo).stdout.split()
    figures = [t.replace("results/mini/", "results/mini/report/").removesuffix(".csv") for t in tables]
    dry = run(["snakemake", "-n", "--cores", "1", *tables, *figures], cwd=repo)
    assert "Nothing to be done" in dry.stdout + dry.stderr  # dvc repro built the figures with the tables
    run(["snakemake", "--cores", "1", "--report", "report.html", *tables, *figures], cwd=repo)
    return repo


def embedded(html: str, name: str) -> dict:
    found = re.search(rf"var {name} = (\{{.*?\}});\n", html, re.DOTALL)
    assert found, f"{name} not in the report"
    return json.loads(found.group(1))


def test_the_report_holds_every_tables_figures_and_tables_and_the_rule_graph(built):
    html = (built / "report.html").read_text()
    results, categories = embedded(html, "results"), embedded(html, "categories")
    for name in TABLES:
        model, _, target = name.rpartition("_")
        folder = f"results/mini/report/{name}"
        files = {Path(p).name for p in categories[model][f"{target} (results/mini)"]}
        assert {"claims.svg", "claims.html", "planted.html", "provenance.html"} <= files, name
        on_disk = {p.name for p in (built / folder).iterdir() if p.suffix in (".svg", ".html")}
        assert files == on_disk, name
        for file in files:
            entry = results[f"{folder}/{file}"]
            content = base64.b64decode(entry["data_uri"].split("base64,", 1)[1]).decode()
            assert content == (built / folder / file).read_text(), f"{folder}/{file}"
            assert "model <tt" in entry["caption"] and name in entry["caption"]
        provenance = json.loads((built / f"results/mini/{name}.provenance.json").read_text())
        shown = base64.b64decode(results[f"{folder}/provenance.html"]["data_uri"].split("base64,", 1)[1]).decode()
        assert provenance["git"]["commit"] in shown and provenance["host"]["hostname"] in shown
        assert provenance["run"]["toolchain"].get("backend", "") in shown
    assert {"throughput.svg", "latency.svg", "agreement.svg"} <= {Path(p).name for p in categories["vilbert"]["cpu (results/mini)"]}
    rules = {node["rule"] for node in embedded(html, "rulegraph_spec")["data"][0]["values"]}
    assert {"table", "figures", "vilbert_preprocess", "clipbert_run_video_qa", "llava_video_llava_gpu"} <= rules
    assert "zoorepro reproduces the numbers" in html  # the workflow description (report/workflow.rst)


def test_dvc_plots_show_the_throughput_curves(built):
    shown = json.loads(run(["dvc", "plots", "show", "--json"], cwd=built).stdout)["data"]
    for name in TABLES:
        for kind in ("throughput", "latency"):
            path = f"results/mini/report/{name}/{kind}.csv"
            assert path in shown, path
            on_disk = (built / path).read_text().splitlines()
            if len(on_disk) == 1:  # nothing measured against a batch size: DVC draws no plot
                assert shown[path] == [], path
                continue
            values = shown[path][0]["content"]["data"]["values"]
            assert len(values) == len(on_disk) - 1
    vilbert = shown["results/mini/report/vilbert_cpu/throughput.csv"][0]["content"]
    assert {v["series"] for v in vilbert["data"]["values"]} >= {"throughput", "claimed on 310P3: throughput"}
    assert vilbert["facet"]["column"]["field"] == "unit"  # report/dvc_curves.json
    run(["dvc", "plots", "show", "-o", "plots"], cwd=built)
    assert (built / "plots" / "index.html").stat().st_size > 1000


def test_dvc_metrics_are_nested_by_model_target_and_batch_size_and_diff_line_by_line(built):
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], cwd=built).stdout)
    data = next(iter(shown.values()))["data"]
    vilbert = data["results/mini/vilbert_cpu.metrics.json"]["data"]
    assert set(vilbert) == {"vilbert"} and {"vqa_score", "bs1", "bs64"} <= set(vilbert["vilbert"]["cpu"])
    assert "throughput" in vilbert["vilbert"]["cpu"]["bs16"]
    metrics = built / "results/mini/vilbert_cpu.metrics.json"
    run(["git", "add", "-A"], cwd=built)
    run(["git", "commit", "-q", "-m", "the cold build"], cwd=built)
    changed = json.loads(metrics.read_text())
    changed["vilbert"]["cpu"]["bs16"]["throughput"] *= 2
    metrics.write_text(json.dumps(changed, indent=2) + "\n")
    run(["git", "commit", "-q", "-am", "twice the throughput"], cwd=built)
    diff = run(["dvc", "metrics", "diff", "HEAD~1", "HEAD", "--md"], cwd=built).stdout
    lines = [line for line in diff.splitlines() if line.startswith("| results/")]
    assert len(lines) == 1 and "| vilbert.cpu.bs16.throughput |" in lines[0], diff


def test_the_report_renders_in_headless_chromium(built, tmp_path):
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no chromium/google-chrome on PATH: the report was not rendered (apt-get install chromium)")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
             "--window-size=1400,900", f"--user-data-dir={tmp_path / 'profile'}"]
    url = (built / "report.html").as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'id="app"' in dom
    app = dom.split('id="app"', 1)[1]
    for model in {name.rpartition("_")[0] for name in TABLES}:  # the results menu, drawn by the report's React app
        assert f">{model}<" in app, model
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    from PIL import Image
    image = Image.open(shot).convert("L")
    assert image.size == (1400, 900)
    low, high = image.getextrema()
    assert high - low > 100  # drawn, not a blank page
    colours = len(set(image.resize((140, 90)).tobytes()))
    assert colours > 20, f"only {colours} grey levels: the report did not render"
