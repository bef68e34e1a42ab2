r"""Keyed pseudonyms for user ids and spreadsheet-safe CSV export.

Pseudonyms are HMAC-SHA256 of the id under a secret key, so the same id maps
to the same pseudonym in every table and every run with that key (joins keep
working), while nobody without the key can recover an id by hashing
candidates — which is exactly what a plain, unkeyed hash of a customer
number allows. journeylab therefore never hashes ids without a key.

The key comes from the environment, never from code or notebooks:

- ``JOURNEYLAB_PSEUDONYM_KEY``: the secret itself (at least 16 characters), or
- ``JOURNEYLAB_PSEUDONYM_KEY_FILE``: the path of a file holding it.

The key never appears in outputs, messages or reprs.

CSV files opened in a spreadsheet run cells starting with ``=``, ``+``,
``-`` or ``@`` (and tab/CR tricks) as formulas. :func:`safe_csv` and
:func:`escape_formulas` prefix such text cells with ``'`` so they stay text,
and :func:`safe_csv` quotes every field holding a line break (``\r`` or
``\n``), so a cell cannot end a row early and start the next with a formula.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import ParameterError

__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "key_origin",
    "pseudonymize",
    "escape_formulas",
    "safe_csv",
    "FORMULA_PREFIXES",
]

KEY_ENV = "JOURNEYLAB_PSEUDONYM_KEY"
KEY_FILE_ENV = "JOURNEYLAB_PSEUDONYM_KEY_FILE"
_MIN_KEY_BYTES = 16
#: Leading characters that make a spreadsheet treat a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _resolve_key(key: str | bytes | None) -> tuple[bytes, str]:
    """Return the key bytes and a description of where it came from (never the key)."""
    if key is not None:
        origin = "the key= argument"
        secret = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    elif os.environ.get(KEY_ENV):
        origin = f"${KEY_ENV}"
        secret = os.environ[KEY_ENV].encode("utf-8")
    elif os.environ.get(KEY_FILE_ENV):
        path = Path(os.environ[KEY_FILE_ENV]).expanduser()
        origin = f"the file named by ${KEY_FILE_ENV}"
        if not path.is_file():
            raise ParameterError(
                f"${KEY_FILE_ENV} names {path}, which is not a readable file; point it at the "
                "file that holds the pseudonymisation key."
            )
        secret = path.read_bytes().strip()
    else:
        raise ParameterError(
            f"No pseudonymisation key: set ${KEY_ENV} to a secret of at least {_MIN_KEY_BYTES} "
            f"characters, or ${KEY_FILE_ENV} to the path of a file holding it. journeylab never "
            "hashes ids without a secret key, because plain hashes of ids can be reversed by "
            "hashing candidate ids."
        )
    if len(secret) < _MIN_KEY_BYTES:
        raise ParameterError(
            f"The pseudonymisation key from {origin} is {len(secret)} bytes long, must be at "
            f'least {_MIN_KEY_BYTES}; use a long random secret (e.g. `python -c "import '
            'secrets; print(secrets.token_urlsafe(32))"`).'
        )
    return secret, origin


def key_origin(key: str | bytes | None = None) -> str:
    """Where the pseudonymisation key would come from (raises if there is none)."""
    return _resolve_key(key)[1]


def pseudonymize(ids: Any, key: str | bytes | None = None, *, length: int = 16) -> Any:
    """Replace ids by keyed HMAC-SHA256 pseudonyms (hex, ``length`` characters).

    Parameters
    ----------
    ids : pandas.Series, pandas.Index, array-like or str
        The ids; missing values stay missing. Ids are hashed as text, so
        ``"00123"`` and ``"123"`` get different pseudonyms.
    key : str or bytes, optional
        The secret. Leave it None in notebooks and reports: it is then read
        from ``$JOURNEYLAB_PSEUDONYM_KEY`` or the file named by
        ``$JOURNEYLAB_PSEUDONYM_KEY_FILE``; a clear error is raised if
        neither is set.
    length : int
        Hex characters kept (8–64). 16 (64 bits) keeps collisions negligible
        for millions of ids; a collision among the given ids raises.

    Returns
    -------
    Same shape as ``ids``: a Series (same index) for a Series, a list for a
    list or array, a str for a str.

    Examples
    --------
    >>> pseudonymize(["u1", "u2"], key="a secret of 16+ chars")
    ['6b0d8e01b31717c1', 'bc4a27d638d7a9a1']
    """
    if not 8 <= int(length) <= 64:
        raise ParameterError(f"length == {length!r}, must be between 8 and 64.")
    secret, _ = _resolve_key(key)
    if isinstance(ids, str):
        return _digest(secret, ids, length)
    series = ids if isinstance(ids, pd.Series) else pd.Series(list(ids), dtype=object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    # One HMAC per distinct id, not per row.
    digests = np.array([_digest(secret, str(u), length) for u in uniques] + [None], dtype=object)
    if len(set(digests[:-1])) != len(uniques):
        raise ParameterError(
            f"Two ids got the same {length}-character pseudonym; pass a larger length=."
        )
    out = pd.Series(
        digests[np.where(codes >= 0, codes, len(uniques))],
        index=series.index,
        dtype="str",
        name=series.name,
    )
    if isinstance(ids, pd.Series):
        return out
    return out.tolist()


def _digest(secret: bytes, text: str, length: int) -> str:
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()[:length]


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula with ``'``.

    Cells (and column names) that are text and start with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return get a leading apostrophe.
    Numbers are left alone (a negative number is not text).

    Examples
    --------
    >>> escape_formulas(pd.DataFrame({"a": ["=1+1", "ok"]}))["a"].tolist()
    ["'=1+1", 'ok']
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
            continue
        is_str = (
            values.map(lambda v: isinstance(v, str), na_action="ignore").fillna(False).astype(bool)
        )
        risky = is_str & values.astype("str").str.startswith(FORMULA_PREFIXES, na=False)
        if risky.any():
            values = values.astype(object).copy()
            values[risky] = "'" + values[risky].astype(str)
            out[column] = values
    out.columns = [_escape_cell(c) for c in out.columns]
    return out


def _escape_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_csv(frame: pd.DataFrame, path: str | Path, **to_csv: Any) -> Path:
    r"""Write ``frame`` to CSV with formula-like text cells escaped (see :func:`escape_formulas`).

    Lines end in ``\r\n`` (RFC 4180), so every field holding a carriage return
    or a line feed is quoted: a bare ``\r`` inside a cell cannot end the row
    early and start the next one with ``=1+1``. Keyword arguments go to
    :meth:`pandas.DataFrame.to_csv`; ``index`` defaults to False (an index
    that is written is escaped too).

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "out.csv"
    >>> safe_csv(pd.DataFrame({"note": ["=HYPERLINK(...)"]}), out).read_bytes()
    b"note\r\n'=HYPERLINK(...)\r\n"
    """
    terminator = to_csv.pop("lineterminator", "\r\n")
    if terminator != "\r\n":
        raise ParameterError(
            f"lineterminator == {terminator!r}: safe_csv always ends lines with '\\r\\n' so that "
            "every field holding a line break is quoted; remove the argument."
        )
    if to_csv.get("quoting", csv.QUOTE_MINIMAL) == csv.QUOTE_NONE:
        raise ParameterError(
            "quoting == csv.QUOTE_NONE would write line breaks inside cells unquoted; remove it."
        )
    if to_csv.pop("index", False):
        frame = frame.reset_index()
    path = Path(path)
    escape_formulas(frame).to_csv(path, index=False, lineterminator=terminator, **to_csv)
    return path
