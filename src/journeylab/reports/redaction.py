"""Secret report parameters never reach a file: not the run's notebook, not a failed one.

A parameter is secret when its name looks like one (:data:`SECRET_NAME_RE`:
``pseudonym_key``, ``api_token``, ``db_password`` ...). The runner handles
secrets structurally, by parameter, never by searching and replacing text in
notebook JSON (which corrupts the file when a secret is ``e`` or ``source``):

1. the injected-parameters cell never holds a secret value: it reads the value
   from the kernel's environment (:func:`parameterize`), where the runner put
   it; only the kernel process sees it;
2. Papermill's metadata records secret parameters as ``"<redacted>"``;
3. every notebook Papermill saves during the run goes through
   :class:`RedactedOutput`, which parses it, replaces any secret value of at
   least :data:`MIN_REDACTED_LENGTH` characters in the string leaves of cell
   outputs (an error message that quotes a key, say), and writes it
   atomically; so the notebook kept after a crash or a SIGTERM, and the
   ``<notebook>.failed.ipynb`` made from it, are redacted like the published
   one.

Shorter values are still never written as parameters (1 and 2), but are not
searched for in outputs: a two-letter "secret" cannot be told from ordinary
text, and replacing it everywhere would garble the report.
"""

from __future__ import annotations

import copy
import json
import re
import secrets as _secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from journeylab.core.errors import ParameterError

__all__ = [
    "SECRET_NAME_RE",
    "REDACTED",
    "MIN_REDACTED_LENGTH",
    "is_secret_name",
    "redact_parameters",
    "SecretParameters",
    "parameterize",
    "redact_notebook",
    "RedactedOutput",
]

#: Parameter names whose values are never written anywhere (keys, tokens, passwords ...).
SECRET_NAME_RE = re.compile(
    r"(secret|token|password|passwd|passphrase|pwd|key|credential|private|auth)", re.I
)
REDACTED = "<redacted>"
#: Secret values at least this long are also removed from cell outputs.
MIN_REDACTED_LENGTH = 6
_ENV_PREFIX = "JOURNEYLAB_SECRET_PARAMETER_"
#: Notebook metadata key set on every notebook the redacting writer saved.
MARKER = "journeylab"
_HTML_MIME = ("text/html", "image/svg+xml")


def is_secret_name(name: str) -> bool:
    """Tell whether a parameter name looks secret (``pseudonym_key``, ``api_token`` ...)."""
    return bool(SECRET_NAME_RE.search(name))


def redact_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``params`` with every secret-looking parameter's value replaced by ``"<redacted>"``."""
    return {k: (REDACTED if is_secret_name(k) else v) for k, v in params.items()}


@dataclass
class SecretParameters:
    """The secret parameters of one run: name → value, and how they reach the kernel."""

    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> SecretParameters:
        """Pick the secret-looking parameters out of ``params``."""
        return cls({k: v for k, v in params.items() if is_secret_name(k)})

    def env_name(self, name: str) -> str:
        """Environment variable that carries parameter ``name`` to the kernel."""
        return _ENV_PREFIX + re.sub(r"\W", "_", name).upper()

    def environment(self) -> dict[str, str]:
        """Environment variables for the kernel: each secret value as JSON."""
        return {self.env_name(k): json.dumps(v) for k, v in self.values.items()}

    def texts(self) -> list[str]:
        """Secret values searched for in outputs: long enough, longest first."""
        texts = {str(v) for v in self.values.values() if v is not None}
        return sorted((t for t in texts if len(t) >= MIN_REDACTED_LENGTH), key=len, reverse=True)

    def scrub(self, text: str, replacement: str = REDACTED) -> str:
        """Replace every searched-for secret value in a piece of text."""
        for secret in self.texts():
            text = text.replace(secret, replacement)
        return text


def parameterize(
    nb: nbformat.NotebookNode,
    params: Mapping[str, Any],
    secrets: SecretParameters,
    *,
    kernel_name: str | None = None,
) -> nbformat.NotebookNode:
    """Inject ``params`` after the notebook's parameters cell, with secrets read from the environment.

    The injected cell is Papermill's own (tag ``injected-parameters``), except
    that each secret is assigned from the environment variable
    :meth:`SecretParameters.env_name` (removed from the kernel's environment
    once read); Papermill's metadata lists the secret as ``"<redacted>"``.
    """
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    language = nb.metadata.get("kernelspec", {}).get("language") or nb.metadata.get(
        "language_info", {}
    ).get("name", "python")
    if secrets.values and language != "python":
        raise ParameterError(
            f"Secret parameters {sorted(secrets.values)} need a Python kernel (this notebook's "
            f"language is {language!r}); pass them through the environment instead."
        )
    placeholders = {k: f"__journeylab_secret_{_secrets.token_hex(8)}__" for k in secrets.values}
    shown = {k: placeholders.get(k, v) for k, v in params.items()}
    # load_notebook_node adds the metadata Papermill expects (tags, papermill section).
    out = parameterize_notebook(
        load_notebook_node(copy.deepcopy(nb)), shown, kernel_name=kernel_name, language="python"
    )
    for cell in out.cells:
        if "injected-parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell.source
        for name, token in placeholders.items():
            reader = (
                f'__import__("json").loads(__import__("os").environ.pop('
                f'"{secrets.env_name(name)}", "null"))  # secret: passed through the environment'
            )
            source = source.replace(f'"{token}"', reader)
        cell.source = source
    out.metadata.papermill["parameters"] = redact_parameters(params)
    return out


def _scrub_tree(value: Any, secrets: SecretParameters, replacement: str) -> Any:
    if isinstance(value, str):
        return secrets.scrub(value, replacement)
    if isinstance(value, list):
        return [_scrub_tree(v, secrets, replacement) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_tree(v, secrets, replacement) for k, v in value.items()}
    return value


def redact_notebook(nb: Mapping[str, Any], secrets: SecretParameters) -> dict[str, Any]:
    """Return a copy of a notebook (dict or NotebookNode) with secrets removed, structurally.

    Papermill's recorded parameters are redacted by name; in every cell
    output, string leaves have each secret value (see
    :meth:`SecretParameters.texts`) replaced by ``<redacted>`` (HTML-escaped
    in HTML and SVG outputs, so the result stays valid markup). Keys, cell
    sources and the notebook's structure are left alone.
    """
    out = json.loads(json.dumps(nb))
    papermill_meta = out.get("metadata", {}).get("papermill")
    if isinstance(papermill_meta, dict) and isinstance(papermill_meta.get("parameters"), dict):
        papermill_meta["parameters"] = redact_parameters(papermill_meta["parameters"])
    if not secrets.texts():
        return out
    for cell in out.get("cells", []):
        outputs = cell.get("outputs")
        if not outputs:
            continue
        for output in outputs:
            for key, value in list(output.items()):
                if key == "data" and isinstance(value, dict):
                    for mime, payload in value.items():
                        replacement = "&lt;redacted&gt;" if mime in _HTML_MIME else REDACTED
                        value[mime] = _scrub_tree(payload, secrets, replacement)
                elif key in ("text", "evalue", "traceback", "ename"):
                    output[key] = _scrub_tree(value, secrets, REDACTED)
    return out


# -- every notebook Papermill saves during a run is redacted first -----------------

_SCHEME = "journeylab-redacted://"
_TARGETS: dict[str, tuple[Path, SecretParameters]] = {}


class _RedactingHandler:
    """Papermill I/O handler: parse, redact, write atomically to the real path."""

    def read(self, path: str) -> str:
        target, _ = _TARGETS[_token(path)]
        return target.read_text(encoding="utf-8")

    def write(self, buf: str, path: str) -> None:
        from journeylab.reports.store import write_atomic

        target, secrets = _TARGETS[_token(path)]
        nb = redact_notebook(json.loads(buf), secrets)
        nb.setdefault("metadata", {})[MARKER] = {"redacted": True}
        write_atomic(target, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")

    def listdir(self, path: str) -> list[str]:  # pragma: no cover - not used for outputs
        raise NotImplementedError("listing is not supported for redacted outputs")

    def pretty_path(self, path: str) -> str:
        return str(_TARGETS[_token(path)][0])


def _token(path: str) -> str:
    return path[len(_SCHEME) :].split("/", 1)[0]


_registered = False


class RedactedOutput:
    r"""Give Papermill an output "path" whose every save is redacted before it touches disk.

    Examples
    --------
    Papermill saves the executed notebook through the handler of the returned
    path (``papermill.execute_notebook(nb, output, ...)`` in the runner); here
    one save stands for them:

    >>> import tempfile
    >>> import nbformat
    >>> from papermill.iorw import write_ipynb
    >>> secrets = SecretParameters({"api_token": "tok-0123456789abcdef"})
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(token)")])
    >>> nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout",
    ...                                               text="tok-0123456789abcdef\n")]
    >>> target = Path(tempfile.mkdtemp()) / "executed.ipynb"
    >>> with RedactedOutput(target, secrets) as output:
    ...     write_ipynb(nb, output)
    >>> nbformat.read(target, as_version=4).cells[0].outputs[0].text
    '<redacted>\n'
    """

    def __init__(self, target: Path, secrets: SecretParameters) -> None:
        self.target = Path(target)
        self.secrets = secrets
        self.token = _secrets.token_hex(8)

    def __enter__(self) -> str:
        global _registered
        if not _registered:
            from papermill.iorw import papermill_io

            papermill_io.register(_SCHEME, _RedactingHandler())
            _registered = True
        _TARGETS[self.token] = (self.target, self.secrets)
        return f"{_SCHEME}{self.token}/{self.target.name}"

    def __exit__(self, *exc: object) -> None:
        _TARGETS.pop(self.token, None)


@contextmanager
def redacted_output(target: Path, secrets: SecretParameters) -> Iterator[str]:
    """Context-manager form of :class:`RedactedOutput`."""
    with RedactedOutput(target, secrets) as path:
        yield path
