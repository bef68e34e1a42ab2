"""The ``journeylab`` command.

Usage::

    journeylab init --data FILE_OR_FOLDER [--out journeylab.yaml]
    journeylab check [journeylab.yaml]
    journeylab report monthly_report --month 2026-10 [--config journeylab.yaml] [--data PATH]
                      [--params FILE.yaml] [--out DIR] [--notebooks DIR]
                      [--alert EXPR [--alert-exit-code N]]
    journeylab report --list
    journeylab params monthly_report
    journeylab notebooks copy DIR
    journeylab audience --out DIR [--data PATH] [--features a,b] [--opt-out COLUMN] [--raw-ids] ...

A failed run (including one stopped by SIGTERM, or a full disk) is one message on
standard error, not a traceback.

Exit codes: 0 the report was published (also when ``--alert`` fires: scripts
test ``count`` in ``alerts.json``, or pass ``--alert-exit-code N`` to exit N when
at least one alert fires); 1 the run failed (the previous report is kept and
the failed notebook is left beside it); 2 a usage or parameter error, such as
an invalid ``--alert`` expression (nothing ran); 3 the report was published but
``--alert`` could not be checked (its metrics.json has no findings).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from journeylab.core.errors import JourneylabError, ParameterError
from journeylab.core.memory import prefer_arrow_pool

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ALERT_UNCHECKED = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="journeylab", description="Customer-journey analytics reports."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("report", help="run a report notebook into reports/<YYYY-MM>/<notebook>/")
    rep.add_argument("notebook", nargs="?", help="notebook name, e.g. monthly_report")
    rep.add_argument("--month", help="YYYY-MM, or 'previous' for the last full month")
    rep.add_argument(
        "--config",
        help="the project file (journeylab.yaml); default: ./journeylab.yaml if present, "
        "else the bundled sample's",
    )
    rep.add_argument(
        "--data",
        help="event data: a CSV/Parquet file, a folder of them, or a DuckDB file "
        "(overrides the project file's events path)",
    )
    rep.add_argument(
        "--notebooks", help="folder of report notebooks to use before the bundled ones"
    )
    rep.add_argument("--params", help="YAML file of further notebook parameters")
    rep.add_argument(
        "--out", default="reports", help="root folder of the reports (default: reports)"
    )
    rep.add_argument("--list", action="store_true", help="list the report notebooks and exit")
    rep.add_argument("--quiet", action="store_true", help="do not log the stages of the run")
    rep.add_argument(
        "--alert",
        metavar="EXPR",
        help="after the run, write alerts.json and alerts.txt for the findings matching EXPR, e.g. "
        "'value_at_stake > 10000 or kind == change_vs_previous' (checked before the run)",
    )
    rep.add_argument(
        "--alert-exit-code",
        type=int,
        metavar="N",
        help="exit N (4-255) when at least one alert fires (default: 0, like any published report)",
    )

    par = sub.add_parser(
        "params", help="show a notebook's parameters with types, defaults and help"
    )
    par.add_argument("notebook")
    par.add_argument(
        "--notebooks", help="folder of report notebooks to use before the bundled ones"
    )

    ini = sub.add_parser("init", help="write a starter project file from the data itself")
    ini.add_argument(
        "--data",
        required=True,
        help="the events file, or a folder holding events.* and other tables",
    )
    ini.add_argument(
        "--out", default="journeylab.yaml", help="where to write it (default: journeylab.yaml)"
    )
    ini.add_argument("--name", help="the project's name, shown in report titles")
    ini.add_argument("--force", action="store_true", help="overwrite an existing project file")

    chk = sub.add_parser(
        "check", help="load every table of a project file and check its names against the data"
    )
    chk.add_argument(
        "config",
        nargs="?",
        default="journeylab.yaml",
        help="the project file (default: journeylab.yaml)",
    )

    nbs = sub.add_parser("notebooks", help="manage the report notebooks")
    nbs_sub = nbs.add_subparsers(dest="action", required=True)
    cp = nbs_sub.add_parser("copy", help="copy the bundled notebooks into DIR to edit them")
    cp.add_argument("dir")
    cp.add_argument("--force", action="store_true", help="overwrite notebooks already in DIR")

    from journeylab.reports import audience_inputs

    audience_inputs.add_arguments(
        sub.add_parser("audience", help="write a dated audience file and its manifest")
    )
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
    from journeylab.reports import parameters
    from journeylab.reports import runner as reports

    args = _parser().parse_args(argv)
    prefer_arrow_pool()  # this process is journeylab's own
    try:
        if args.command == "init":
            try:
                return _init(args)
            except JourneylabError as exc:
                print(f"journeylab init: {exc}", file=sys.stderr)
                return EXIT_USAGE
        if args.command == "check":
            from journeylab.reports.check import main_check

            return main_check(args.config)
        if args.command == "notebooks":
            for path in parameters.copy_notebooks(args.dir, overwrite=args.force):
                print(path)
            return EXIT_OK
        if getattr(args, "notebooks", None):
            parameters.use_notebook_dir(args.notebooks)
        if args.command == "params":
            specs = reports.notebook_parameters(args.notebook)
            width = max((len(n) for n in specs), default=4)
            for spec in specs.values():
                print(
                    f"{spec.name:<{width}}  {spec.type:<6} default {spec.default:<14} {spec.help}"
                )
            return EXIT_OK
        if args.command == "audience":
            from journeylab.reports import audience_inputs

            print(audience_inputs.run(args).summary())
            return EXIT_OK
        if args.list:
            for name in reports.list_notebooks():
                print(name)
            return EXIT_OK
        if not args.notebook or not args.month:
            print("journeylab report: give a notebook and --month (or --list)", file=sys.stderr)
            return EXIT_USAGE
        rule = _alert_rule(args)  # before anything runs: a bad rule is a usage error
        params = _read_params(args.params)
        for key in ("month", "data", "config"):
            if key in params:
                raise ParameterError(
                    f"Give {key!r} on the command line (--{key}), not in {args.params}."
                )
        run = reports.run_report(
            args.notebook,
            month=args.month,
            params=params,
            data=args.data,
            config=args.config,
            out_dir=args.out,
            log=None if args.quiet else _log,
        )
        print(run.html)
        if rule is not None:
            return _alert(rule, run, args.alert_exit_code)
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


def _alert_rule(args: argparse.Namespace):
    """Parse ``--alert`` (and check ``--alert-exit-code``) before the report runs."""
    if args.alert is None:
        if args.alert_exit_code is not None:
            raise ParameterError("--alert-exit-code needs --alert EXPR.")
        return None
    code = args.alert_exit_code
    if code is not None and not 4 <= code <= 255:
        raise ParameterError(
            f"--alert-exit-code == {code}, must be 4-255: 0 is a published report, 1 a failed run, "
            "2 a usage error and 3 an alert that could not be checked."
        )
    from journeylab.actions.alerts import parse_alert

    return parse_alert(args.alert)


def _alert(rule, run, exit_code: int | None) -> int:
    """Check the published report's findings, write alerts.json/alerts.txt beside it, print the alert."""
    from journeylab.actions.alerts import check_findings

    try:
        alerts = check_findings(rule, run.metrics, report=run.html, notebook=run.notebook)
    except JourneylabError as exc:
        print(
            f"journeylab: the report is published at {run.folder}, but --alert could not be checked: {exc}",
            file=sys.stderr,
        )
        return EXIT_ALERT_UNCHECKED
    alerts.write(run.folder)
    print(alerts.text(), end="")
    if alerts.count and exit_code is not None:
        return exit_code
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    from journeylab.io.infer import guess_project, render_project

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"journeylab init: {out} exists; pass --force to overwrite it.", file=sys.stderr)
        return EXIT_USAGE
    guess = guess_project(args.data)
    data = Path(args.data)
    name = args.name or (
        data.resolve().name.replace("_", " ").replace("-", " ").title() if data.is_dir() else None
    )
    text = render_project(guess, base_dir=out.resolve().parent, name=name)
    out.write_text(text, encoding="utf-8")
    if guess.transactions is not None:
        print(
            f"wrote {out}: order lines; the journey is each customer's first order and the repeat orders."
        )
    else:
        print(
            f"wrote {out}: {len(guess.event_counts)} events, conversion guessed as {guess.conversion!r}."
        )
    print("Read the lines marked CHECK, correct them, then run: journeylab check " + str(out))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
