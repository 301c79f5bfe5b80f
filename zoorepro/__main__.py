"""`python -m zoorepro {claims,audit,params,table,tables,dvc-yaml}`."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import ZooreproError
from .fsutil import atomic_write_text


def _audit(args) -> int:
    """Text (the summary; colours on a TTY only), the full markdown, or JSON on stdout; the
    markdown report is written to --out in every case."""
    import json

    from .audit import audit
    from .claims import load_claims
    result = audit(load_claims(), Path(args.results), Path(args.out) if args.out else None, args.verify_raw)
    fmt = "text" if args.summary else args.format
    if fmt == "json":
        print(json.dumps(result.json, indent=2))
    elif fmt == "markdown":
        print(result.markdown, end="")
    else:
        colour = {"always": True, "never": False}.get(args.color, sys.stdout.isatty() and "NO_COLOR" not in os.environ)
        print(result.terminal(colour, args.out or None), end="")
    if result.failed:
        print(f"audit: failed: {'; '.join(result.failed)}", file=sys.stderr)
        return 1
    return 0


def _params(args) -> int:
    from .config import load_params
    load_params(Path(args.params))
    print(f"{args.params}: valid")
    return 0


def _table(args) -> int:
    import json

    from .claims import load_claims
    from .config import load_params, scale_of_results_dir, target_settings
    from .report import make_table
    from .verdicts import RunContext
    params = load_params()
    out = Path(args.out)
    scale = scale_of_results_dir(out.parent.as_posix()) if args.scale is None else args.scale
    toolchain = json.loads(Path(args.toolchain).read_text()) if args.toolchain else {}
    ctx = RunContext(model=args.model, target=args.target, hardware=target_settings(params, args.target)["hardware"],
                     scale=scale, standin=bool(toolchain.get("standin")))
    table = make_table(ctx, args.measurements, load_claims(), params["tolerances"], out, toolchain,
                       Path(args.planted) if args.planted else None)
    print(f"wrote {out} ({len(table.rows)} rows)")
    return 0


def _tables(args) -> int:
    from .config import load_params, results_dir
    params = load_params()
    scale = args.scale or params["scale"]
    for model, targets in params["tables"].get(scale, {}).items():
        for target in targets:
            print(f"{results_dir(scale)}/{model}_{target}.csv")
    return 0


def _dvc_yaml(args) -> int:
    from .dvcgen import render_dvc_yaml
    text = render_dvc_yaml()
    if args.check:
        current = Path(args.path).read_text() if Path(args.path).exists() else ""
        if current != text:
            print(f"{args.path} is out of date with params.yaml/the Snakefile: run `make dvc.yaml`", file=sys.stderr)
            return 1
        print(f"{args.path} is up to date")
        return 0
    atomic_write_text(Path(args.path), text)
    print(f"wrote {args.path}")
    return 0


def _claims(args) -> int:
    from .claims import run_claims
    return run_claims(args)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one subparser with real options and a --help per command."""
    from .claims import CLAIMS_DESCRIPTION, add_claims_arguments

    parser = argparse.ArgumentParser(prog="python -m zoorepro", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, func, description: str | None = None):
        p = sub.add_parser(name, help=summary, description=description or summary)
        p.set_defaults(func=func)
        return p

    p = command("claims", "print the claims registry", _claims, CLAIMS_DESCRIPTION)
    add_claims_arguments(p)
    p = command("audit", "compare every claim with every table; write results/audit.md", _audit,
                "Compare every claim with every table under --results and write the report to "
                "--out. Every table is verified first (INVALID tables are not counted). Exit status 1 "
                "when a comparable number is out of tolerance or a table is invalid.")
    p.add_argument("--results", default="results", help="folder of result tables (default: results)")
    p.add_argument("--out", default="results/audit.md",
                   help="markdown report to write; empty to only print (default: results/audit.md)")
    p.add_argument("--verify-raw", action="store_true",
                   help="also re-hash every raw output the tables cite (absent ones are reported, not failed)")
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text",
                   help="what to print: text = the summary (status, failures, counts per table; the default), "
                        "markdown = the full report, json = everything as data (the report is written either way)")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                   help="colour the verdicts: auto = only on a terminal and without NO_COLOR (default)")
    p.add_argument("--summary", action="store_true", help="same as --format text (kept for old scripts)")
    p = command("params", "validate params.yaml", _params)
    p.add_argument("--params", default="params.yaml", help="file to validate (default: params.yaml)")
    p = command("table", "join measurements with claims into a result table", _table)
    p.add_argument("--model", required=True, help="a registered model (zoorepro/<model>/)")
    p.add_argument("--target", required=True, help="target name from params.yaml targets, e.g. cpu")
    p.add_argument("--scale", choices=["mini", "full", "shape"], default=None,
                   help="default: from the output folder (results/ = full, results/mini/ = mini, results/shape/ = shape)")
    p.add_argument("--measurements", nargs="+", required=True, help="measurement files (JSON lists of records; each record names its raw files)")
    p.add_argument("--toolchain", help="JSON with the backend's versions (standin: true marks stand-in tools)")
    p.add_argument("--planted", help="mini scale: the mini generator's planted claims "
                                     "(data/mini/<model>/planted_claims.yaml) to judge the accuracy rows against")
    p.add_argument("--out", required=True, help="the table to write, e.g. results/mini/<model>_cpu.csv")
    p = command("tables", "list the tables params.yaml asks for at a scale", _tables)
    p.add_argument("--scale", choices=["mini", "full", "shape"], default=None, help="default: params.yaml scale")
    p = command("dvc-yaml", "generate dvc.yaml from params.yaml and the Snakefile targets", _dvc_yaml)
    p.add_argument("--path", default="dvc.yaml", help="file to write or check (default: dvc.yaml)")
    p.add_argument("--check", action="store_true", help="exit 1 when the file differs from what would be generated")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run the command, return its exit status; a ZooreproError is printed as one
    `error: ...` line and exits 2, like a usage error."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ZooreproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
