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
   string) and refuses notebooks with ``!`` or ``%%bash`` lines;
2. takes a lock, so two runs of the same report and month cannot overlap;
3. executes into a temporary folder beside the target;
4. accepts the run only if Papermill succeeded, no cell failed or stayed
   pending, no output is an error, and the notebook's final cell called
   :func:`finish` (the completion marker);
5. swaps the folder into place with renames, so readers see the old report or
   the new one, never half of one.

A failed run raises :class:`ReportFailed`, keeps the previous good report, and
leaves the failed notebook beside it as ``<notebook>.failed.ipynb``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from journeylab.core.errors import JourneylabError, ParameterError, did_you_mean
from journeylab.core.timeparse import parse_month

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
#: Parameter names whose values are never published (keys, tokens, passwords ...).
_SECRET_NAME_RE = re.compile(r"(secret|token|password|passwd|key|credential|private)", re.I)
_PACKAGES = (
    "journeylab",
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "duckdb",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
    "ipykernel",
)


class ReportFailed(JourneylabError, RuntimeError):
    """A report run did not produce an acceptable notebook.

    Attributes
    ----------
    notebook : str
        The notebook's name.
    reason : str
        Why the run was rejected.
    failed_path : pathlib.Path or None
        Where the failed notebook was kept for diagnosis.
    cell_index : int or None
        The first failing cell, when one is known.
    """

    def __init__(
        self,
        notebook: str,
        reason: str,
        failed_path: Path | None = None,
        cell_index: int | None = None,
    ) -> None:
        self.notebook = notebook
        self.reason = reason
        self.failed_path = failed_path
        self.cell_index = cell_index
        where = f"\n  the failed notebook is kept at {failed_path}" if failed_path else ""
        super().__init__(
            f"Report {notebook!r} failed: {reason}{where}\n  the previous report, if any, is unchanged."
        )


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter of a notebook's ``parameters`` cell."""

    name: str
    type: str
    default: str
    help: str


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


# -- notebooks and parameters -------------------------------------------------
def notebook_dir() -> Path:
    """Return the folder of report notebooks: ``$JOURNEYLAB_NOTEBOOKS``, ./notebooks, or the repository's."""
    env = os.environ.get("JOURNEYLAB_NOTEBOOKS")
    if env:
        return Path(env)
    local = Path.cwd() / "notebooks"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parents[3] / "notebooks"


def list_notebooks(folder: Path | None = None) -> list[str]:
    """Names of the runnable notebooks (those with a ``parameters`` cell)."""
    folder = folder or notebook_dir()
    names = []
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if _parameters_cell_index(nb) is not None:
            names.append(path.stem)
    return names


def _resolve_notebook(notebook: str | Path) -> Path:
    path = Path(notebook)
    if path.suffix == ".ipynb" and path.exists():
        return path
    folder = notebook_dir()
    candidate = folder / f"{Path(notebook).stem}.ipynb"
    if candidate.exists():
        return candidate
    names = list_notebooks(folder) if folder.is_dir() else []
    raise ParameterError(
        f"No report notebook {str(notebook)!r}{did_you_mean(str(notebook), names)}; "
        f"available in {folder}: {names}."
    )


def _parameters_cell_index(nb: nbformat.NotebookNode) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    return None


def notebook_parameters(notebook: str | Path) -> dict[str, ParameterSpec]:
    """Return the parameters a notebook declares: name → type, default and help text.

    Examples
    --------
    >>> specs = notebook_parameters("monthly_report")  # doctest: +SKIP
    >>> specs["month"].type
    'str'
    """
    import papermill

    path = _resolve_notebook(notebook)
    raw = papermill.inspect_notebook(str(path))
    return {
        name: ParameterSpec(
            name=name,
            type=str(info.get("inferred_type_name") or "None"),
            default=str(info.get("default")),
            help=str(info.get("help") or ""),
        )
        for name, info in raw.items()
    }


def resolve_month(month: str, today: dt.date | None = None) -> str:
    """Return ``month`` as ``YYYY-MM``; ``"previous"`` means the last full month.

    The reading is :func:`journeylab.core.timeparse.parse_month`, shared by every
    ``month=`` argument.

    Examples
    --------
    >>> resolve_month("previous", today=dt.date(2026, 11, 23))
    '2026-10'
    >>> resolve_month("2026-03")
    '2026-03'
    """
    return parse_month(month, "month", today=today)


def _coerce(name: str, value: Any, spec: ParameterSpec) -> Any:
    """Coerce a value given as text (CLI, YAML) to the declared type."""
    kind = spec.type
    if kind == "str":
        if not isinstance(value, str):
            raise ParameterError(f"{name} == {value!r}, must be a string (quote it in YAML).")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        raise ParameterError(f"{name} == {value!r}, must be true or false.")
    if kind in {"int", "float"}:
        caster = int if kind == "int" else float
        if isinstance(value, bool):
            raise ParameterError(f"{name} == {value!r}, must be a number.")
        try:
            out = caster(value)
        except (TypeError, ValueError):
            raise ParameterError(f"{name} == {value!r}, must be {'an integer' if kind == 'int' else 'a number'}.") from None
        if kind == "int" and isinstance(value, float) and not float(value).is_integer():
            raise ParameterError(f"{name} == {value!r}, must be an integer.")
        return out
    return value


def validate_parameters(notebook: str | Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and types of ``params`` against the notebook's parameters cell.

    Raises
    ------
    ParameterError
        For an unknown name (with the closest known name) or a value of the
        wrong type; ``month`` must be a ``YYYY-MM`` string.
    """
    specs = notebook_parameters(notebook)
    clean: dict[str, Any] = {}
    for name, value in params.items():
        if name not in specs:
            raise ParameterError(
                f"Notebook {Path(notebook).stem!r} has no parameter {name!r}{did_you_mean(name, specs)}; "
                f"its parameters are {sorted(specs)}."
            )
        clean[name] = _coerce(name, value, specs[name])
    if "month" in clean:
        clean["month"] = resolve_month(clean["month"])
    return clean


def _check_no_shell(nb: nbformat.NotebookNode, name: str) -> None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            stripped = line.lstrip()
            if stripped.startswith("!") or stripped.startswith("%%bash") or stripped.startswith("%sx"):
                raise ReportFailed(
                    name,
                    f"cell {i} runs a shell command ({stripped[:40]!r}); report notebooks may not, "
                    "because a failing shell line does not fail the run. Use Python instead.",
                    cell_index=i,
                )


# -- running ------------------------------------------------------------------
@contextlib.contextmanager
def _lock(path: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock file; a stale lock (dead pid) is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                pid = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _pid_alive(pid):
                raise ReportFailed(
                    name, f"another run of this report and month is in progress (pid {pid}, lock {path})."
                ) from None
            path.unlink(missing_ok=True)
    else:  # pragma: no cover - only on a lock race
        raise ReportFailed(name, f"could not take the lock {path}.")
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _first_problem(nb: nbformat.NotebookNode) -> tuple[int | None, str | None]:
    """Find the first failed, pending or erroring cell of an executed notebook."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return i, f"cell {i} raised {out.get('ename')}: {out.get('evalue')}"
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if status in {"failed", "pending", "running"}:
            return i, (
                f"cell {i} did not complete (status {status!r}): the notebook stopped early, "
                "e.g. through sys.exit() or a dead kernel"
            )
    return None, None


def section_durations(nb: nbformat.NotebookNode) -> list[tuple[str, float]]:
    """Return the execution time per section of an executed notebook, in order.

    A section starts at each markdown heading; cells before the first heading
    count as "setup". Durations come from the timings Papermill records.
    """
    out: list[tuple[str, float]] = []
    current = "setup"
    total = 0.0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = next((ln.lstrip("#").strip() for ln in cell.source.splitlines() if ln.startswith("#")), None)
            if heading:
                if total:
                    out.append((current, total))
                current, total = heading, 0.0
            continue
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if duration:
            total += float(duration)
    if total:
        out.append((current, total))
    return out


def _redact(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: ("<redacted>" if _SECRET_NAME_RE.search(k) else v) for k, v in params.items()}


def _sanitize_notebook(nb: nbformat.NotebookNode, params: Mapping[str, Any]) -> nbformat.NotebookNode:
    """Drop the injected-parameters cell and Papermill metadata; redact secrets elsewhere."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    secrets = [str(v) for k, v in params.items() if _SECRET_NAME_RE.search(k) and str(v)]
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            continue
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if secrets:
            text = json.dumps(cell)
            for secret in secrets:
                text = text.replace(json.dumps(secret)[1:-1], "<redacted>")
            cell = nbformat.from_dict(json.loads(text))
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("papermill", None)
    return nb


def export_html(nb: nbformat.NotebookNode, path: Path, *, with_code: bool, title: str = "Report") -> Path:
    """Write ``nb`` as self-contained static HTML: figures embedded, no scripts, no network.

    Reports are read by people who never run code, often offline, so every
    ``<script>`` (MathJax, require.js, mermaid loaders from a CDN) is removed:
    the content is static tables and embedded PNG figures.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=not with_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    if not with_code:
        # Readers get results only: warnings and logs on stderr (which can name
        # temporary paths) stay in executed.ipynb and the with-code HTML.
        nb = nbformat.from_dict(json.loads(json.dumps(nb)))
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if o.get("name") != "stderr"]
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = re.sub(r"<script\b[^>]*>.*?</script>", "", body, flags=re.S | re.I)
    body = re.sub(r"<link[^>]+href=\"https?://[^\"]*\"[^>]*>", "", body)
    path.write_text(body, encoding="utf-8")
    return path


def _fingerprint(data: str | None) -> dict[str, Any]:
    if not data:
        return {"source": "bundled sample (generated, seeded)"}
    path = Path(data)
    if path.is_file():
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return {"source": path.name, "sha256": digest.hexdigest(), "bytes": path.stat().st_size}
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        digest = hashlib.sha256()
        for p in files:
            digest.update(p.name.encode())
            digest.update(hashlib.sha256(p.read_bytes()).digest())
        return {"source": path.name, "sha256": digest.hexdigest(), "files": len(files)}
    return {"source": "table or query", "sha256": hashlib.sha256(str(data).encode()).hexdigest()}


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in _PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def run_report(
    notebook: str | Path,
    *,
    month: str,
    params: Mapping[str, Any] | None = None,
    data: str | None = None,
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
        The event data (file, folder or table) passed to the notebook's
        ``data`` parameter; the bundled sample when omitted.
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
        Before anything runs, for an unknown or mistyped parameter.
    ReportFailed
        When the run is rejected; the previous report is left untouched.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    say = log or (lambda line: None)
    started = time.perf_counter()
    path = _resolve_notebook(notebook)
    name = path.stem
    month = resolve_month(month)
    given = dict(params or {})
    given["month"] = month
    if data is not None:
        given["data"] = str(data)
    clean = validate_parameters(path, given)
    source_nb = nbformat.read(path, as_version=4)
    _check_no_shell(source_nb, name)

    root = Path(out_dir).resolve()
    month_dir = root / month
    final = month_dir / name
    failed_copy = month_dir / f"{name}.failed.ipynb"
    say(f"[{name} {month}] parameters validated: {sorted(clean)}")

    with _lock(month_dir / f".{name}.lock", name):
        tmp = month_dir / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        executed = tmp / "executed.ipynb"
        env_before = {k: os.environ.get(k) for k in (RUN_DIR_ENV, REPORTS_DIR_ENV, UNDER_RUNNER_ENV, "TQDM_DISABLE")}
        os.environ[RUN_DIR_ENV] = str(tmp)
        os.environ[REPORTS_DIR_ENV] = str(root)
        os.environ[UNDER_RUNNER_ENV] = "1"
        os.environ["TQDM_DISABLE"] = "1"
        reason: str | None = None
        cell_index: int | None = None
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(path),
                str(executed),
                parameters=clean,
                kernel_name=kernel_name,
                progress_bar=False,
                cwd=str(path.parent),
                execution_timeout=timeout,
            )
        except PapermillExecutionError as exc:
            reason, cell_index = f"cell {exc.cell_index} raised {exc.ename}: {exc.evalue}", exc.cell_index
        except Exception as exc:  # dead kernel, timeout, nbclient errors
            reason = f"execution stopped: {type(exc).__name__}: {exc}"
        finally:
            for key, value in env_before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        say(f"[{name} {month}] executed in {time.perf_counter() - t0:.1f}s")

        nb = nbformat.read(executed, as_version=4) if executed.exists() else None
        if nb is not None:
            for section, seconds in section_durations(nb):
                say(f"[{name} {month}]   {section}: {seconds:.1f}s")
        if reason is None and nb is None:
            reason = "no executed notebook was written"
        if reason is None:
            cell_index, reason = _first_problem(nb)
        if reason is None and not (tmp / _COMPLETE_MARKER).exists():
            reason = (
                "the notebook stopped before its final cell called journeylab.reports.runner.finish() "
                "(an early sys.exit, a dead kernel or a skipped cell)"
            )
        if reason is None and not (tmp / "metrics.json").exists():
            reason = "no metrics.json was written"
        if reason is not None:
            if executed.exists():
                shutil.copyfile(executed, failed_copy)
            shutil.rmtree(tmp, ignore_errors=True)
            say(f"[{name} {month}] FAILED: {reason}")
            raise ReportFailed(name, reason, failed_copy if failed_copy.exists() else None, cell_index)

        shared = _sanitize_notebook(nb, clean)
        nbformat.write(shared, executed)
        t1 = time.perf_counter()
        title = f"{name.replace('_', ' ').capitalize()} — {month}"
        export_html(shared, tmp / "report.html", with_code=False, title=title)
        export_html(shared, tmp / "report_with_code.html", with_code=True, title=title)
        say(f"[{name} {month}] HTML exported in {time.perf_counter() - t1:.1f}s")
        (tmp / _COMPLETE_MARKER).unlink()
        metrics = json.loads((tmp / "metrics.json").read_text())
        run_info = json.loads((tmp / "run_info.json").read_text()) if (tmp / "run_info.json").exists() else {}
        (tmp / "run_info.json").unlink(missing_ok=True)
        duration = time.perf_counter() - started
        run = {
            "notebook": name,
            "month": month,
            "parameters": _redact(clean),
            "data": _fingerprint(clean.get("data")),
            "row_counts": run_info.get("row_counts", {}),
            "seed": clean.get("seed", run_info.get("seed")),
            "packages": _versions(),
            "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "duration_s": round(duration, 2),
        }
        (tmp / "run.json").write_text(json.dumps(run, indent=2, default=str))

        # Swap into place: old → backup, new → final, drop backup.
        backup = month_dir / f".{name}.previous-{os.getpid()}"
        if final.exists():
            final.rename(backup)
        try:
            tmp.rename(final)
        except OSError:
            if backup.exists():
                backup.rename(final)
            raise
        shutil.rmtree(backup, ignore_errors=True)
        failed_copy.unlink(missing_ok=True)
        say(f"[{name} {month}] published {final / 'report.html'} ({duration:.1f}s)")
        files = {p.name: p for p in final.iterdir()}
        return ReportRun(name, month, final, metrics, _redact(clean), duration, files)


# -- called from inside report notebooks -------------------------------------
def finish(metrics: Mapping[str, Any], *, row_counts: Mapping[str, int] | None = None, seed: int | None = None) -> None:
    """Record the headline metrics and mark the run complete; call it in the last cell.

    Under the runner this writes ``metrics.json`` into the run folder and the
    completion marker the runner checks for. Run interactively, it only shows
    the metrics.
    """
    payload = json.loads(json.dumps(dict(metrics), default=_json_default))
    run_dir = os.environ.get(RUN_DIR_ENV)
    if run_dir:
        folder = Path(run_dir)
        (folder / "metrics.json").write_text(json.dumps(payload, indent=2, sort_keys=True))
        info = {"row_counts": dict(row_counts or {}), "seed": seed}
        (folder / "run_info.json").write_text(json.dumps(info, default=_json_default))
        (folder / _COMPLETE_MARKER).write_text("ok")
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
