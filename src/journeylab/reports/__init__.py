"""Reports: the Papermill runner, the ``journeylab`` command, workspaces and widgets."""

from journeylab.reports.runner import (
    RUN_DIR_ENV,
    ParameterSpec,
    ReportFailed,
    ReportRun,
    export_html,
    finish,
    list_notebooks,
    notebook_dir,
    notebook_parameters,
    previous_metrics,
    resolve_month,
    run_report,
    section_durations,
    validate_parameters,
)
from journeylab.reports.workspace import TABLE_FILES, Workspace, open_workspace

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
    "Workspace",
    "open_workspace",
    "TABLE_FILES",
]
