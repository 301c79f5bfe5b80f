"""`python -m zoorepro {claims,audit,params,table,tables,dvc-yaml}`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ZooreproError


def _audit(args) -> int:
    from .audit import run_audit
    from .claims import load_claims
    text, status = run_audit(load_claims(), Path(args.results), Path(args.out) if args.out else None)
    print(text, end="")
    if status:
        print("audit: a comparable number is out of tolerance", file=sys.stderr)
    return status


def _params(args) -> int:
    from .config import load_params
    load_params(Path(args.params))
    print(f"{args.params}: valid")
    return 0


def _table(args) -> int:
    from .claims import load_claims
    from .config import load_params, scale_of_results_dir, target_settings
    from .report import make_table
    from .verdicts import RunContext
    import json
    params = load_params()
    out = Path(args.out)
    scale = scale_of_results_dir(out.parent.as_posix()) if args.scale is None else args.scale
    toolchain = json.loads(Path(args.toolchain).read_text()) if args.toolchain else {}
    ctx = RunContext(model=args.model, target=args.target, hardware=target_settings(params, args.target)["hardware"],
                     scale=scale, standin=bool(toolchain.get("standin")))
    table = make_table(ctx, args.measurements, load_claims(), params["tolerances"], out, toolchain)
    print(f"wrote {out} ({len(table.rows)} rows)")
    return 0


def _tables(args) -> int:
    from .config import load_params, results_dir
    params = load_params()
    scale = args.scale or params["scale"]
    for model, targets in params["tables"][scale].items():
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
    Path(args.path).write_text(text)
    print(f"wrote {args.path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoorepro", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("claims", help="print the claims registry", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p = sub.add_parser("audit", help="compare every claim with every table; write results/audit.md")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="results/audit.md")
    p.set_defaults(func=_audit)
    p = sub.add_parser("params", help="validate params.yaml")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=_params)
    p = sub.add_parser("table", help="join measurements with claims into a result table")
    p.add_argument("--model", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--scale", choices=["mini", "full"], default=None,
                   help="default: from the output folder (results/ = full, results/mini/ = mini)")
    p.add_argument("--measurements", nargs="+", required=True, help="FILE.json[=RAW1,RAW2,...]")
    p.add_argument("--toolchain", help="JSON with the backend's versions (standin: true marks stand-in tools)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_table)
    p = sub.add_parser("tables", help="list the tables params.yaml asks for at a scale")
    p.add_argument("--scale", choices=["mini", "full"], default=None, help="default: params.yaml scale")
    p.set_defaults(func=_tables)
    p = sub.add_parser("dvc-yaml", help="generate dvc.yaml from params.yaml and the Snakefile targets")
    p.add_argument("--path", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="exit 1 when the file differs from what would be generated")
    p.set_defaults(func=_dvc_yaml)
    args = parser.parse_args(argv)
    try:
        if args.command == "claims":
            from .claims import main_claims
            return main_claims(args.rest)
        return args.func(args)
    except ZooreproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
