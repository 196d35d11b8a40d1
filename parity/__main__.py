"""``python -m parity report --out DIR`` | ``python -m parity check`` | ``python -m parity list``.

report: run the whole catalogue on torch, jaxsched (float32 and float64) and optax, and write DIR/index.html
        (self-contained) and DIR/README.md (plots in DIR/plots/); DIR is checked before anything is computed.
check:  one row per case with jaxsched's error in float32 and float64; exit status 1 on any failure
        (cases marked with a known issue are printed but do not fail the gate).
list:   the cases (kind, steps, name).
releases: jaxsched against older and newer torch releases' own scheduler files (fetched from PyPI and
        cached; a release that cannot be fetched is skipped with the reason): DIR/releases.md and .json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path


def _progress(cases, desc: str):
    """A tqdm bar on a terminal; nothing on a non-terminal stderr (a CI log gets no carriage-return lines)."""
    from tqdm import tqdm

    return tqdm(cases, desc=desc, unit="case", file=sys.stderr, dynamic_ncols=True, leave=True, disable=None)


def cmd_check(args) -> int:
    from . import catalogue, compare

    cases = catalogue.select(args.only)
    width = max(len(c.name) for c in cases)
    print(f"{'case':{width}}  {'float32':>9}  {'float64':>9}  result")
    failed, known, missing = [], [], []
    for case in cases:
        res = compare.run_case(case, with_optax=False)
        if not res.available:
            print(f"{case.name:{width}}  {'-':>9}  {'-':>9}  not available ({res.reason})", flush=True)
            missing.append(case.name)
            continue
        cells = []
        for p in compare.PRECISIONS:
            err = max([res.err[p]] + ([res.mom_err[p]] if p in res.mom_err else []),
                      key=lambda x: float("inf") if x != x else x)
            cells.append(f"{err:9.1e}")
        status = res.status
        if not res.passed:
            (known if case.known_issue else failed).append(case.name)
            if case.known_issue:
                status = f"FAIL (known issue: {case.known_issue})"
        print(f"{case.name:{width}}  {cells[0]}  {cells[1]}  {status}", flush=True)
    tol = ", ".join(f"{p} <= {t:g}" for p, t in compare.TOLERANCE.items())
    passed = len(cases) - len(failed) - len(known) - len(missing)
    print(f"\n{passed} of {len(cases)} cases pass ({tol} of the largest LR)"
          + (f"; {len(failed)} fail" if failed else "") + (f"; {len(known)} fail with a known issue" if known else "")
          + (f"; {len(missing)} not available" if missing else ""))
    if failed:
        print("FAILED: " + "; ".join(failed))
        return 1
    return 0


def cmd_report(args) -> int:
    from . import catalogue, compare, report

    t0 = time.perf_counter()
    out = Path(args.out)
    try:
        report.prepare_out(out)  # a bad --out fails now, not after a minute of computing
    except report.ReportPathError as err:
        args.parser.error(str(err))
    cases = catalogue.select(args.only)
    results, reprs, pngs = [], {}, {}
    for case in _progress(cases, "parity report"):
        res = compare.run_case(case, with_optax=True)
        reprs[case.name] = compare.describe(case)
        if res.available:
            pngs[case.name] = report.plot_case(res)
        res.traj = None  # plotted: free the trajectories
        results.append(res)
    html_path, md_path = report.write(results, reprs, pngs, out, time.perf_counter() - t0)
    print(f"jaxsched: {report.summary_counts(results)}; optax: {report.optax_summary(results)}")
    print(f"wrote {html_path} and {md_path} in {time.perf_counter() - t0:.0f} s")
    return 0


def cmd_list(args) -> int:
    from . import catalogue, frameworks

    fw = frameworks.matching(args.only)
    torch_cases = [c for c in catalogue.CASES if not args.only or args.only.lower() in c.name.lower()]
    if not torch_cases and not fw:
        catalogue.select(args.only)  # its "no case name contains" message
    for c in torch_cases:
        print(f"{c.kind:9}  {c.steps:5}  {c.name}")
    for c in fw:
        print(f"{c.kind:9}  {c.steps:5}  {c.name}  [{', '.join(w.framework for w in c.writings)}]")
    return 0


def cmd_releases(args) -> int:
    from . import releases

    return releases.run(args.torch, Path(args.out), Path(args.cache) if args.cache else None, only=args.only)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("report", help="write the HTML + Markdown parity report")
    p.add_argument("--out", required=True, help="output folder (created, with its parents)")
    p.add_argument("--only", help="only cases whose name contains this text")
    p.set_defaults(fn=cmd_report, parser=p)
    p = sub.add_parser("check", help="jaxsched vs torch in float32 and float64; non-zero exit on failure")
    p.add_argument("--only", help="only cases whose name contains this text")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("list", help="list the catalogue")
    p.add_argument("--only", help="only cases whose name contains this text")
    p.set_defaults(fn=cmd_list)
    p = sub.add_parser("releases", help="jaxsched against each torch release's own lr_scheduler.py")
    p.add_argument("--torch", nargs="+", metavar="VERSION", default=None,
                   help="torch versions (default: 2.0.1 2.2.2 2.3.1 2.7.1 2.8.0 2.12.1 2.15.0)")
    p.add_argument("--out", default="parity/results/releases", help="output folder (default: %(default)s)")
    p.add_argument("--cache", help="cache folder for the releases' files (default: ~/.cache/jaxsched/torch-releases)")
    p.add_argument("--only", help="only configurations whose name contains this text")
    p.set_defaults(fn=cmd_releases)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        rc = args.fn(args)
        sys.stdout.flush()
    except BrokenPipeError:  # `python -m parity list | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
