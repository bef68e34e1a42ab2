"""Run parameterized notebooks into dated, reproducible, safe-to-share reports.

``run_report("monthly_report", month="2026-10")`` executes
``notebooks/monthly_report.ipynb`` with Papermill and writes, atomically::

    reports/2026-10/monthly_report/
      executed.ipynb          the run, with outputs (secrets redacted)
      report.html             for readers: no code, figures embedded, works offline
      report_with_code.html   for researchers
      metrics.json            the headline figures, machine-readable
      run.json                parameters, data fingerprint, versions, seed, duration

Papermill alone is not safe for unattended runs: it exits 0 after
``sys.exit(0)`` mid-notebook, only warns about a misspelt parameter, and
overwrites its output as soon as a run starts. So the runner

1. validates parameter names and types against the notebook before running
   (a typo is an error with a suggestion; a month is always a ``YYYY-MM``
   string of ASCII digits; numbers are finite), checks that ``--data``
   exists and the output folder can be written, and refuses notebooks that
   run shell commands (``!``, ``%system``, ``%%bash``, the other shell magics,
   and a one-line cell such as ``ls -la`` that automagic would run);
2. takes an operating-system lock, so two runs of the same report and month
   cannot overlap, and repairs what a crashed run left behind
   (:mod:`journeylab.reports.store`);
3. executes into a temporary folder beside the target; secret parameters
   reach the kernel through its environment only, and every notebook saved
   during the run is redacted before it is written (:mod:`journeylab.reports.redaction`);
4. accepts the run only if Papermill succeeded, no cell failed or stayed
   pending, no output is an error, and the notebook's final cell called
   :func:`finish` (the completion marker);
5. exports the HTML without scripts and refuses to publish it unless
   :func:`journeylab.core.safe_text.check_html` finds nothing that runs code or
   fetches from another host;
6. swaps the folder into place in one step, so readers see the old report or
   the new one, never half of one or none.

A failed run raises :class:`ReportFailed`, keeps the previous good report, and
leaves the failed notebook beside it as ``<notebook>.failed.ipynb``; so does a
run stopped by SIGTERM, and a full disk is a failed run with a clear message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from journeylab.core.memory import ARROW_POOL_ENV, kernel_arrow_pool
from journeylab.core.safe_text import UnsafeHtmlError
from journeylab.reports import store as report_store
from journeylab.reports.export import _sanitize_notebook, export_html
from journeylab.reports.kernel import _Interrupted, _kernel_manager_class, _stop_on_signal
from journeylab.reports.notebook_checks import (
    ReportFailed,
    _check_no_shell,
    _first_problem,
    cell_durations,
    section_durations,
)
from journeylab.reports.parameters import (
    ParameterSpec,
    _check_data,
    _prepare_output_folder,
    _project_file,
    _resolve_notebook,
    list_notebooks,
    notebook_dir,
    notebook_parameters,
    resolve_month,
    validate_parameters,
)
from journeylab.reports.provenance import _fingerprint, _versions
from journeylab.reports.redaction import (
    SecretParameters,
    parameterize,
    redact_notebook,
    redact_parameters,
    redacted_output,
)
from journeylab.reports.store import StoreError, describe_os_error, write_atomic

__all__ = [
    "ReportFailed",
    "ReportRun",
    "ParameterSpec",
    "notebook_dir",
    "list_notebooks",
    "notebook_parameters",
    "validate_parameters",
    "resolve_month",
    "run_report",
    "finish",
    "previous_metrics",
    "export_html",
    "section_durations",
    "RUN_DIR_ENV",
]

#: Environment variable through which the runner tells the kernel where the
#: run's output folder is (so no file-system path is injected into the notebook).
RUN_DIR_ENV = "JOURNEYLAB_RUN_DIR"
#: Where the reports of earlier months live, for month-over-month deltas.
REPORTS_DIR_ENV = "JOURNEYLAB_REPORTS_DIR"
#: Set by the runner so progress bars stay off in scheduled runs.
UNDER_RUNNER_ENV = "JOURNEYLAB_UNDER_RUNNER"
_COMPLETE_MARKER = ".complete"


@dataclass
class ReportRun:
    """What a successful run produced."""

    notebook: str
    month: str
    folder: Path
    metrics: dict[str, Any]
    parameters: dict[str, Any]
    duration_s: float
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def html(self) -> Path:
        """Path of the reader's ``report.html``."""
        return self.folder / "report.html"


def run_report(
    notebook: str | Path,
    *,
    month: str,
    params: Mapping[str, Any] | None = None,
    data: str | None = None,
    config: str | Path | None = None,
    out_dir: str | Path = "reports",
    kernel_name: str = "python3",
    timeout: int | None = 1800,
    log=None,
) -> ReportRun:
    """Run a report notebook for ``month`` and publish it atomically.

    Parameters
    ----------
    notebook : str or Path
        A notebook name in ``notebooks/`` (``"monthly_report"``) or a path.
    month : str
        ``YYYY-MM`` or ``"previous"``.
    params : mapping, optional
        Further notebook parameters; validated against the notebook first.
    data : str, optional
        The event data (an existing file or folder) passed to the notebook's
        ``data`` parameter as an absolute path; overrides the project file's data.
    config : str or Path, optional
        The project file passed to the notebook's ``config`` parameter;
        ``./journeylab.yaml`` when present, else the bundled sample's. It is
        validated before anything runs.
    out_dir : str or Path
        Root of the reports tree.
    kernel_name : str
        Jupyter kernel to run in.
    timeout : int, optional
        Per-cell timeout in seconds.
    log : callable, optional
        Receives one line per stage of the run (e.g. ``print``).

    Returns
    -------
    ReportRun

    Raises
    ------
    ParameterError
        Before anything runs: an unknown or mistyped parameter, a ``data``
        path that does not exist, an output folder that cannot be written.
    ReportFailed
        When the run is rejected, stopped by SIGTERM, or the disk is full;
        the previous report is left untouched.
    """
    say = log or (lambda line: None)
    started = time.perf_counter()
    path = _resolve_notebook(notebook)
    name = path.stem
    month = resolve_month(month)
    given = dict(params or {})
    given["month"] = month
    if data is not None and str(data) != "":
        given["data"] = _check_data(data)
    config = _project_file(config)
    if config is not None:
        given["config"] = str(config)
    clean = validate_parameters(path, given)
    source_nb = nbformat.read(path, as_version=4)
    _check_no_shell(source_nb, name)

    root = Path(out_dir).resolve()
    month_dir = root / month
    _prepare_output_folder(out_dir, month_dir)
    tag = f"[{name} {month}]"
    say(f"{tag} parameters validated: {sorted(clean)}")
    secrets = SecretParameters.of(clean)
    run = _Run(
        name=name,
        month=month,
        notebook=path,
        source=source_nb,
        params=clean,
        secrets=secrets,
        root=root,
        month_dir=month_dir,
        kernel_name=kernel_name,
        timeout=timeout,
        say=say,
        started=started,
    )
    try:
        with report_store.hold_lock(month_dir / f".{name}.lock"):
            recovery = report_store.recover(month_dir, name, run.failed_copy)
            for note in recovery.notes:
                say(f"{tag} recovered: {note}")
            run.kept_crash_notebook = recovery.kept_failed_notebook
            with _stop_on_signal(run):
                return run.execute_and_publish()
    except StoreError as exc:
        raise ReportFailed(name, str(exc)) from None
    except OSError as exc:  # the lock or the recovery could not touch the folder
        raise ReportFailed(name, describe_os_error(exc, f"preparing {month_dir}")) from None


@dataclass
class _Run:
    """One run of a report notebook: execution in a temporary folder, then publishing."""

    name: str
    month: str
    notebook: Path
    source: nbformat.NotebookNode
    params: dict[str, Any]
    secrets: SecretParameters
    root: Path
    month_dir: Path
    kernel_name: str
    timeout: int | None
    say: Any
    started: float
    stopped_by: str | None = None
    publishing: bool = False
    kernel_manager: Any = None
    kept_crash_notebook: bool = False

    @property
    def tag(self) -> str:
        return f"[{self.name} {self.month}]"

    @property
    def final(self) -> Path:
        return self.month_dir / self.name

    @property
    def failed_copy(self) -> Path:
        return self.month_dir / f"{self.name}.failed.ipynb"

    @property
    def tmp(self) -> Path:
        return self.month_dir / f".{self.name}.tmp-{os.getpid()}"

    def kill_kernel(self) -> bool:
        """Kill the running kernel (SIGKILL); False when there is none."""
        km = self.kernel_manager
        pid = getattr(getattr(km, "provisioner", None), "pid", None) if km is not None else None
        if not pid:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return True

    # -- failure ------------------------------------------------------------------
    def fail(self, reason: str, cell_index: int | None = None) -> ReportFailed:
        """Keep the failed notebook (redacted), remove the temporary folder, build the error."""
        reason = self.secrets.scrub(reason)
        kept: Path | None = None
        executed = self.tmp / "executed.ipynb"
        try:
            text = executed.read_text(encoding="utf-8") if executed.exists() else None
        except OSError:
            text = None
        # Free the temporary folder first: on a full disk that makes room for the copy.
        shutil.rmtree(self.tmp, ignore_errors=True)
        if text is not None:
            try:
                nb = redact_notebook(json.loads(text), self.secrets)
                write_atomic(self.failed_copy, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
                kept = self.failed_copy
            except OSError as exc:
                reason += f" (the failed notebook could not be kept: {describe_os_error(exc, 'writing it')})"
            except ValueError as exc:  # a notebook cut short by the crash
                reason += f" (the failed notebook could not be kept: it is not valid JSON: {exc})"
        self.say(f"{self.tag} FAILED: {reason}")
        return ReportFailed(self.name, reason, kept, cell_index)

    def stop_reason(self, where: str) -> str:
        return (
            f"the run was stopped by {self.stopped_by} {where}; the notebook as far as it ran is "
            "kept for diagnosis"
        )

    # -- the run ------------------------------------------------------------------
    def execute_and_publish(self) -> ReportRun:
        """Execute, check, export and publish; every failure goes through :meth:`fail`."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        try:
            self.tmp.mkdir(parents=True)
            reason, cell_index, nb = self.execute()
            if reason is not None:
                raise self.fail(reason, cell_index)
            return self.publish(nb)
        except _Interrupted:
            raise self.fail(
                self.stop_reason(
                    "before the notebook ran"
                    if not (self.tmp / "executed.ipynb").exists()
                    else "after the notebook ran"
                )
            ) from None
        except UnsafeHtmlError as exc:
            raise self.fail(str(exc)) from None
        except OSError as exc:
            raise self.fail(
                describe_os_error(exc, f"writing the report in {self.month_dir}")
            ) from None
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def kernel_environment(self) -> dict[str, str]:
        """Return the kernel's environment: the run folder, runner flags and the secret parameters.

        Arrow's memory pool in the kernel is journeylab's (see :mod:`journeylab.core.memory`)
        unless the environment already names one.
        """
        return {
            **os.environ,
            RUN_DIR_ENV: str(self.tmp),
            REPORTS_DIR_ENV: str(self.root),
            UNDER_RUNNER_ENV: "1",
            "TQDM_DISABLE": "1",
            ARROW_POOL_ENV: kernel_arrow_pool(self.say),
            **self.secrets.environment(),
        }

    def execute(self) -> tuple[str | None, int | None, nbformat.NotebookNode | None]:
        """Run the notebook with Papermill; return (reason it failed or None, cell, notebook)."""
        import papermill
        from papermill.exceptions import PapermillExecutionError

        executed = self.tmp / "executed.ipynb"
        prepared = parameterize(
            self.source, self.params, self.secrets, kernel_name=self.kernel_name
        )
        reason: str | None = None
        cell_index: int | None = None
        t0 = time.perf_counter()
        with redacted_output(executed, self.secrets) as output:
            try:
                papermill.execute_notebook(
                    prepared,
                    output,
                    kernel_name=self.kernel_name,
                    progress_bar=False,
                    cwd=str(self.notebook.parent),
                    execution_timeout=self.timeout,
                    kernel_manager_class=_kernel_manager_class(self),
                )
            except PapermillExecutionError as exc:
                reason, cell_index = (
                    f"cell {exc.cell_index} raised {exc.ename}: {exc.evalue}",
                    exc.cell_index,
                )
            except _Interrupted:
                reason = None  # stopped_by is set; the reason is written below
            except OSError as exc:
                reason = describe_os_error(exc, "saving the executed notebook")
            except Exception as exc:  # dead kernel, timeout, nbclient errors
                reason = f"execution stopped: {type(exc).__name__}: {exc}"
                if isinstance(exc.__context__, OSError):
                    reason = describe_os_error(exc.__context__, "saving the executed notebook")
            finally:
                self.kernel_manager = None
        self.say(f"{self.tag} executed in {time.perf_counter() - t0:.1f}s")
        if self.stopped_by:
            nb = nbformat.read(executed, as_version=4) if executed.exists() else None
            started = [
                i
                for i, cell in enumerate(nb.cells if nb is not None else [])
                if cell.get("metadata", {}).get("papermill", {}).get("start_time")
            ]
            running = started[-1] if started else None
            where = (
                f"while cell {running} was running" if running is not None else "during execution"
            )
            return self.stop_reason(where), running, None
        nb = nbformat.read(executed, as_version=4) if executed.exists() else None
        if nb is not None:
            self.log_durations(nb, time.perf_counter() - t0)
        if reason is None and nb is None:
            reason = "no executed notebook was written"
        if reason is None:
            cell_index, reason = _first_problem(nb)
        if reason is None and not (self.tmp / _COMPLETE_MARKER).exists():
            reason = (
                "the notebook stopped before its final cell called journeylab.reports.runner.finish() "
                "(an early sys.exit, a dead kernel or a skipped cell)"
            )
        if reason is None and not (self.tmp / "metrics.json").exists():
            reason = "no metrics.json was written"
        return reason, cell_index, nb

    def log_durations(self, nb: nbformat.NotebookNode, total: float) -> None:
        """Log the time of each section, the kernel's start-up and the slowest cells."""
        sections = section_durations(nb)
        for section, seconds in sections:
            self.say(f"{self.tag}   {section}: {seconds:.1f}s")
        spent = sum(seconds for _, seconds in sections)
        self.say(
            f"{self.tag} kernel start-up and saving the notebook: {max(total - spent, 0.0):.1f}s"
        )
        slowest = sorted(cell_durations(nb), key=lambda c: -c[2])[:3]
        for index, first, seconds in slowest:
            self.say(f"{self.tag} slowest cell {index} ({first!r}): {seconds:.1f}s")

    def publish(self, nb: nbformat.NotebookNode) -> ReportRun:
        """Export the HTML (checked), write run.json, and swap the folder into place."""
        tmp, name, month = self.tmp, self.name, self.month
        shared = _sanitize_notebook(nb, self.secrets)
        write_atomic(tmp / "executed.ipynb", nbformat.writes(shared))
        t1 = time.perf_counter()
        title = f"{name.replace('_', ' ').capitalize()} — {month}"
        export_html(shared, tmp / "report.html", with_code=False, title=title)
        export_html(shared, tmp / "report_with_code.html", with_code=True, title=title)
        self.say(f"{self.tag} HTML exported and checked in {time.perf_counter() - t1:.1f}s")
        (tmp / _COMPLETE_MARKER).unlink()
        metrics = json.loads((tmp / "metrics.json").read_text())
        run_info = (
            json.loads((tmp / "run_info.json").read_text())
            if (tmp / "run_info.json").exists()
            else {}
        )
        (tmp / "run_info.json").unlink(missing_ok=True)
        duration = time.perf_counter() - self.started
        parameters = redact_parameters(self.params)
        run = {
            "notebook": name,
            "month": month,
            "parameters": parameters,
            "data": _fingerprint(self.params.get("data")),
            "row_counts": run_info.get("row_counts", {}),
            "seed": self.params.get("seed", run_info.get("seed")),
            "packages": _versions(),
            "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "duration_s": round(duration, 2),
        }
        write_atomic(tmp / "run.json", json.dumps(run, indent=2, default=str))
        if self.stopped_by:
            raise _Interrupted(self.stopped_by)
        self.publishing = True
        try:
            report_store.swap_into_place(tmp, self.final, self.say)
        finally:
            self.publishing = False
        if not self.kept_crash_notebook:  # a killed run's notebook stays until the next success
            self.failed_copy.unlink(missing_ok=True)
        self.say(f"{self.tag} published {self.final / 'report.html'} ({duration:.1f}s)")
        if isinstance(metrics.get("findings"), list):
            # the ledger follows each finding month after month (journeylab.actions.ledger)
            from journeylab.actions.ledger import append_findings

            append_findings(
                self.root, month, metrics["findings"], project=str(metrics.get("project", name))
            )
            self.say(
                f"{self.tag} {len(metrics['findings'])} findings recorded in {self.root / 'findings.jsonl'}"
            )
        files = {p.name: p for p in self.final.iterdir()}
        return ReportRun(name, month, self.final, metrics, parameters, duration, files)


# -- called from inside report notebooks -------------------------------------
def finish(
    metrics: Mapping[str, Any],
    *,
    row_counts: Mapping[str, int] | None = None,
    seed: int | None = None,
) -> None:
    """Record the headline metrics and mark the run complete; call it in the last cell.

    Under the runner this writes ``metrics.json`` into the run folder and the
    completion marker the runner checks for. Run interactively, it only shows
    the metrics.
    """
    payload = json.loads(json.dumps(dict(metrics), default=_json_default))
    run_dir = os.environ.get(RUN_DIR_ENV)
    if run_dir:
        folder = Path(run_dir)
        write_atomic(folder / "metrics.json", json.dumps(payload, indent=2, sort_keys=True))
        info = {"row_counts": dict(row_counts or {}), "seed": seed}
        write_atomic(folder / "run_info.json", json.dumps(info, default=_json_default))
        write_atomic(folder / _COMPLETE_MARKER, "ok")
    else:
        print(json.dumps(payload, indent=2, sort_keys=True))


def previous_metrics(notebook: str, month: str) -> dict[str, Any] | None:
    """Return the metrics.json of the month before ``month``, if a report exists for it."""
    root = Path(os.environ.get(REPORTS_DIR_ENV, "reports"))
    year, mon = (int(x) for x in resolve_month(month).split("-"))
    prev = f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"
    path = root / prev / notebook / "metrics.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _json_default(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (pd.Timestamp, dt.date)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
