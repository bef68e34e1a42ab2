"""The shared form of an executed report: secrets and run metadata removed, static HTML that runs nothing."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from journeylab.core.safe_text import require_safe_html
from journeylab.reports.redaction import SecretParameters, redact_notebook
from journeylab.reports.store import write_atomic


def _sanitize_notebook(
    nb: nbformat.NotebookNode, secrets: SecretParameters
) -> nbformat.NotebookNode:
    """Drop the injected-parameters cell and Papermill metadata; redact secrets in outputs."""
    nb = nbformat.from_dict(redact_notebook(nb, secrets))
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            continue
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("journeylab", None)
    return nb


#: A static page: the lab template without require.js, MathJax, mermaid or widget scripts.
_STATIC_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


#: Outputs a static report can show; JavaScript, widget views and SVG are never chosen.
_STATIC_PRIORITY = ["text/html", "text/markdown", "image/png", "image/jpeg", "text/plain"]


def export_html(
    nb: nbformat.NotebookNode, path: Path, *, with_code: bool, title: str = "Report"
) -> Path:
    """Write ``nb`` as self-contained static HTML: figures embedded, no scripts, no network.

    Reports are read by people who never run code, often offline, so the page
    is built from a template without scripts (no MathJax, require.js or
    mermaid loaders from a CDN) and outputs are shown as HTML, Markdown, PNG or
    text, never as JavaScript or widget views. Before anything is written the
    page is checked by :func:`journeylab.core.safe_text.check_html`.

    Raises
    ------
    journeylab.core.safe_text.UnsafeHtmlError
        When the page would still run code or fetch from another host (a
        data value reached an output unescaped); nothing is written then.
    """
    import jinja2
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    exporter = HTMLExporter(
        config=Config({"NbConvertBase": {"display_data_priority": _STATIC_PRIORITY}}),
        template_name="lab",
        template_file="journeylab_static.html.j2",
        extra_loaders=[jinja2.DictLoader({"journeylab_static.html.j2": _STATIC_TEMPLATE})],
        exclude_input=not with_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    # Widget state would be written as a <script> block; a static page shows the fallbacks.
    nb.metadata.pop("widgets", None)
    if not with_code:
        # Readers get results only: warnings and logs on stderr (which can name
        # temporary paths) stay in executed.ipynb and the with-code HTML.
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if o.get("name") != "stderr"]
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    require_safe_html(body, Path(path).name)
    write_atomic(Path(path), body)
    return Path(path)
