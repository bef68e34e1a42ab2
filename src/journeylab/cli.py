"""The ``journeylab`` command.

Usage::

    journeylab report monthly_report --month 2026-10 [--data PATH] [--params FILE.yaml] [--out DIR]
    journeylab report --list
    journeylab params monthly_report

Exit codes: 0 the report was published; 1 the run failed (the previous report
is kept and the failed notebook is left beside it), including a run stopped by
SIGTERM and a full disk; 2 a usage or parameter error (nothing ran). These
failures are one message on standard error, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from journeylab.schema import JourneylabError, ParameterError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="journeylab", description="Customer-journey analytics reports.")
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("report", help="run a report notebook into reports/<YYYY-MM>/<notebook>/")
    rep.add_argument("notebook", nargs="?", help="notebook name, e.g. monthly_report")
    rep.add_argument("--month", help="YYYY-MM, or 'previous' for the last full month")
    rep.add_argument("--data", help="event data: a CSV/Parquet file, a folder of them, or a DuckDB file")
    rep.add_argument("--params", help="YAML file of further notebook parameters")
    rep.add_argument("--out", default="reports", help="root folder of the reports (default: reports)")
    rep.add_argument("--list", action="store_true", help="list the report notebooks and exit")
    rep.add_argument("--quiet", action="store_true", help="do not log the stages of the run")

    par = sub.add_parser("params", help="show a notebook's parameters with types, defaults and help")
    par.add_argument("notebook")
    return parser


def _read_params(path: str | None) -> dict:
    if not path:
        return {}
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f"Cannot read the parameters file {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ParameterError(f"The parameters file {path} must hold a mapping of name: value.")
    return loaded


def _log(line: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``journeylab`` command; returns the exit code."""
    from journeylab import reports

    args = _parser().parse_args(argv)
    try:
        if args.command == "params":
            specs = reports.notebook_parameters(args.notebook)
            width = max((len(n) for n in specs), default=4)
            for spec in specs.values():
                print(f"{spec.name:<{width}}  {spec.type:<6} default {spec.default:<14} {spec.help}")
            return EXIT_OK
        if args.list:
            for name in reports.list_notebooks():
                print(name)
            return EXIT_OK
        if not args.notebook or not args.month:
            print("journeylab report: give a notebook and --month (or --list)", file=sys.stderr)
            return EXIT_USAGE
        params = _read_params(args.params)
        for key in ("month", "data"):
            if key in params:
                raise ParameterError(f"Give {key!r} on the command line (--{key}), not in {args.params}.")
        run = reports.run_report(
            args.notebook,
            month=args.month,
            params=params,
            data=args.data,
            out_dir=args.out,
            log=None if args.quiet else _log,
        )
        print(run.html)
        return EXIT_OK
    except ParameterError as exc:
        print(f"journeylab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except reports.ReportFailed as exc:
        print(f"journeylab: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except JourneylabError as exc:
        print(f"journeylab: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"journeylab: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
