"""Inputs of an audience from a data folder, a file or the bundled sample, and the ``journeylab audience`` command.

The audience itself is built by :func:`journeylab.actions.audiences.build`;
this module opens the tables it needs (through the report workspace) and
parses the command's arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from journeylab.actions.audiences import Audience, build
from journeylab.core.errors import ParameterError


@dataclass
class AudienceInputs:
    """The tables an audience is built from, as :func:`open_inputs` found them."""

    people: pd.DataFrame
    experiment: pd.DataFrame | None
    events: pd.DataFrame | None
    transactions: pd.DataFrame | None
    outcome: str
    source: str
    stage_map: Any = None


def open_inputs(
    data: str | Path | None = None,
    *,
    outcome: str | None = None,
    variant: str = "variant",
    seed: int = 2026,
    n_users: int = 20_000,
) -> AudienceInputs:
    """Find the people, the experiment, the events and the purchases in ``data``.

    Parameters
    ----------
    data : str or Path, optional
        None or ``""``: the bundled sample. A folder: a workspace
        (:func:`journeylab.reports.workspace.open_workspace`); people are its users table
        (or the users of its events), the experiment its assignments with
        ``outcome`` an *event* counted after assignment. A file (CSV/Parquet):
        one row per person, which is also the experiment when it has the
        ``variant`` column (``outcome`` is then a 0/1 *column*); a file without
        ``user_id`` gets the 1-based row number as id (e.g. Hillstrom).
    outcome : str, optional
        The uplift outcome: an event name (sample, folder) or a column (file);
        for the bundled sample, its project file's conversion by default.
    variant : str
        The arm column of a file.
    seed, n_users : int
        Seed and size of the bundled sample.
    """
    if outcome is None:
        if data:
            raise ParameterError(
                "Name the uplift outcome: an event of the data (or a 0/1 column of a file)."
            )
        from journeylab.datasets import sample_project

        outcome = sample_project().conversion[0]
    from journeylab.io.loaders import load_assignments
    from journeylab.reports.workspace import open_workspace

    path = Path(data) if data else None
    if path is not None and path.is_file():
        raw = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, nrows=0)
        has_id = "user_id" in raw.columns
        if variant in raw.columns:
            loaded = load_assignments(
                path,
                columns={variant: "variant"} if variant != "variant" else None,
                user_id_from_row=not has_id,
            )
            frame = loaded.frame
            return AudienceInputs(frame, frame, None, None, outcome, path.name)
        frame = raw if path.suffix == ".parquet" else pd.read_csv(path, dtype={"user_id": "string"})
        if not has_id:
            frame.insert(0, "user_id", [str(i) for i in range(1, len(frame) + 1)])
        return AudienceInputs(frame, None, None, None, outcome, path.name)
    return inputs_from_workspace(open_workspace(path, seed=seed, n_users=n_users), outcome)


def inputs_from_workspace(ws: Any, outcome: str) -> AudienceInputs:
    """Return the audience inputs of an opened workspace: people, the experiment, events, purchases.

    Parameters
    ----------
    ws : Workspace
        As :func:`journeylab.reports.workspace.open_workspace` or ``open_report_workspace`` return it.
    outcome : str
        The event counted per person after assignment (e.g. the project's conversion).
    """
    from journeylab.experiments import user_metrics

    events = ws.events.frame
    people = (
        ws.users
        if ws.users is not None
        else pd.DataFrame({"user_id": sorted(events["user_id"].astype(str).unique())})
    )
    experiment = None
    if ws.assignments is not None:
        experiment = user_metrics(ws.assignments.frame, events, {outcome: outcome})
        extra = [c for c in people.columns if c not in experiment.columns]
        experiment = experiment.merge(people[["user_id", *extra]], on="user_id", how="left")
    transactions = ws.transactions.frame if ws.transactions is not None else None
    return AudienceInputs(
        people, experiment, events, transactions, outcome, ws.source, ws.stage_map
    )


def add_arguments(parser) -> None:
    """Add the ``journeylab audience`` options to an argparse parser."""
    parser.add_argument("--out", required=True, help="folder of the audience files")
    parser.add_argument(
        "--data",
        help="a data folder, or one per-person file (CSV/Parquet); default: the bundled sample",
    )
    parser.add_argument(
        "--name", default="audience", help="audience name, the start of the file names"
    )
    parser.add_argument(
        "--date", help="audience date in the file names, YYYY-MM-DD (default: today)"
    )
    parser.add_argument(
        "--format", default="csv", choices=["csv", "parquet", "both"], help="file format(s)"
    )
    parser.add_argument(
        "--config",
        help="the project file: its privacy.opt_out, privacy.min_users and conversion "
        "are the defaults of --opt-out, --min-users and --outcome (default: ./journeylab.yaml if present)",
    )
    parser.add_argument("--opt-out", help="column of the people table marking who opted out")
    parser.add_argument(
        "--raw-ids", action="store_true", help="write raw ids instead of keyed pseudonyms"
    )
    parser.add_argument(
        "--min-users",
        type=int,
        help="small-group suppression threshold (default: the project's, 30)",
    )
    parser.add_argument(
        "--by", help="output column defining sub-audiences (each suppressed below --min-users)"
    )
    parser.add_argument("--top-deciles", type=int, help="keep people in uplift deciles 1..K")
    parser.add_argument(
        "--outcome",
        help="uplift outcome: an event (folder/sample) or a 0/1 column (file); "
        "default: the project's conversion",
    )
    parser.add_argument(
        "--features", help="comma-separated uplift features (columns of the people table)"
    )
    parser.add_argument("--variant", default="variant", help="arm column of a per-person file")
    parser.add_argument("--control", default="control", help="label of the holdout arm")
    parser.add_argument(
        "--treatment",
        action="append",
        help="label of a treated arm (repeatable; default: every other)",
    )
    parser.add_argument(
        "--seed", type=int, default=2026, help="seed of the sample, the uplift split and the models"
    )
    parser.add_argument("--n-users", type=int, default=20_000, help="users in the bundled sample")


def run(args) -> Audience:
    """Build the audience the ``journeylab audience`` options describe."""
    from journeylab.core.project import PROJECT_FILE, load_project
    from journeylab.customers.uplift import fit_uplift
    from journeylab.datasets import sample_project

    config = args.config or (PROJECT_FILE if Path(PROJECT_FILE).exists() else None)
    project = load_project(config) if config else sample_project()
    args.outcome = args.outcome or project.conversion[0]
    args.opt_out = args.opt_out or project.opt_out
    args.min_users = args.min_users if args.min_users is not None else project.min_users
    inputs = open_inputs(
        args.data, outcome=args.outcome, variant=args.variant, seed=args.seed, n_users=args.n_users
    )
    uplift = None
    if args.features:
        if inputs.experiment is None:
            raise ParameterError(
                "--features asks for uplift, but the data holds no experiment (no variant/assignments)."
            )
        uplift = fit_uplift(
            inputs.experiment,
            outcome=inputs.outcome,
            features=[f.strip() for f in args.features.split(",") if f.strip()],
            control=args.control,
            treatment=args.treatment,
            seed=args.seed,
        )
    return build(
        inputs.people,
        out=args.out,
        name=args.name,
        date=args.date,
        formats=("csv", "parquet") if args.format == "both" else (args.format,),
        events=inputs.events,
        stage_map=inputs.stage_map,
        conversion=list(project.conversion),
        transactions=inputs.transactions,
        uplift=uplift,
        top_deciles=args.top_deciles,
        opt_out=args.opt_out,
        by=args.by,
        raw_ids=args.raw_ids,
        min_users=args.min_users,
        seed=args.seed,
    )
