"""Query results into pandas, and repeated text stored as categories.

:func:`fetch_frame` runs a DuckDB relation into a DataFrame a batch at a time,
each column copied out of DuckDB's memory, so no result is held twice and a
column the loader replaces frees its own memory. Asked to, it stores text
columns whose values repeat as pandas categoricals while it reads (each batch
dictionary-encoded by Arrow), so a log's event names, channels and properties
never exist as one string a row: a 10-character name takes about 20 bytes a
row as ``str`` and one or two as a categorical code.

Categoricals made here always have their distinct values as categories,
sorted as pandas sorts text, so sorting, comparing and grouping give what they
give on the text.
"""

from __future__ import annotations

from collections.abc import Collection

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journeylab.core.memory import arrow_pool, release_free_memory

__all__ = ["as_categorical", "drop_unused_categories", "fetch_frame"]

#: Rows per batch fetched from DuckDB (its vector size times 64).
FETCH_ROWS = 131_072

_NULLABLE_INT = {
    "int8": pd.Int8Dtype(),
    "int16": pd.Int16Dtype(),
    "int32": pd.Int32Dtype(),
    "int64": pd.Int64Dtype(),
    "uint8": pd.UInt8Dtype(),
    "uint16": pd.UInt16Dtype(),
    "uint32": pd.UInt32Dtype(),
    "uint64": pd.UInt64Dtype(),
}


def fetch_frame(
    rel: duckdb.DuckDBPyRelation,
    categories: Collection[str] = (),
    *,
    number_rows: tuple[str, int | None] = ("", None),
) -> pd.DataFrame:
    """Run a relation into pandas through Arrow (much faster for text than ``.df()``).

    Text becomes pandas' ``str`` dtype; integers and booleans keep exact
    values (nullable dtypes only where a NULL occurs, so a 64-bit id never
    passes through float); decimals become floats; dates become datetimes.

    ``categories`` names text columns to store as categoricals (see
    :func:`as_categorical`) when their values repeat: at most half as many
    distinct values as rows, judged on the first batch and then on all rows.

    ``number_rows=(name, first)`` with ``first`` not None adds a first column
    ``name`` numbering the rows in the order they arrive, from ``first``.
    """
    pool = arrow_pool()
    reader = rel.to_arrow_reader(FETCH_ROWS)
    schema = pa.schema([f.with_type(_owned_type(f.type)) for f in reader.schema])
    encode = {i for i, f in enumerate(reader.schema) if f.name in categories and _is_text(f.type)}
    chunks: list[list[pa.Array]] = [[] for _ in schema]
    for batch in reader:
        for i, column in enumerate(batch.columns):
            if i in encode:
                encoded = pc.dictionary_encode(column, memory_pool=pool)
                if chunks[i] or 2 * len(encoded.dictionary) <= len(column):
                    chunks[i].append(encoded)
                    continue
                encode.discard(i)  # as many names as rows: kept as text
            chunks[i].append(_owned(column, pool))
        del batch
    columns = {}
    for i, field in enumerate(schema):
        parts, chunks[i] = chunks[i], []  # each column's Arrow copy goes once pandas has it
        if i in encode:
            columns[i] = _from_dictionary(parts, field.name)
        else:
            columns[i] = _to_pandas(pa.chunked_array(parts, type=field.type), field.name)
        del parts
    frame = pd.DataFrame(columns, copy=False)
    frame.columns = schema.names  # as the query names them, repeats included
    label, first = number_rows
    if first is not None:
        frame.insert(0, label, np.arange(first, first + len(frame), dtype=np.int64))
    release_free_memory()  # the batches' Arrow copies, converted above
    return frame


def _is_text(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _owned_type(kind: pa.DataType) -> pa.DataType:
    """Return the Arrow type a fetched column is kept in (text with pandas' 64-bit offsets)."""
    if _is_text(kind):
        return pa.large_string()
    if pa.types.is_decimal(kind):
        return pa.float64()
    return kind


def _owned(column: pa.Array, pool: pa.MemoryPool) -> pa.Array:
    """Copy a fetched column into Arrow's memory (``pool``), in the type it is kept in."""
    # a copy first: a cast alone would keep the characters in DuckDB's memory
    column = pa.concat_arrays([column], memory_pool=pool)
    kind = _owned_type(column.type)
    return column.cast(kind, memory_pool=pool) if kind != column.type else column


def _to_pandas(column: pa.ChunkedArray, name: str) -> pd.Series:
    """Convert one column: text as ``str``, exact integers, nullable only when needed."""
    kind = column.type

    def mapper(kind: pa.DataType):
        if pa.types.is_large_string(kind):
            return pd.StringDtype("pyarrow", na_value=np.nan)
        if pa.types.is_integer(kind):
            return _NULLABLE_INT.get(str(kind))
        if pa.types.is_boolean(kind):
            return pd.BooleanDtype()
        return None

    table = pa.table({"values": column})
    values = table.to_pandas(types_mapper=mapper, date_as_object=False, memory_pool=arrow_pool())[
        "values"
    ]
    if (pa.types.is_integer(kind) or pa.types.is_boolean(kind)) and not values.isna().any():
        values = pd.Series(values.to_numpy(dtype=values.dtype.numpy_dtype))
    return values.rename(name)


def _from_dictionary(parts: list[pa.DictionaryArray], name: str) -> pd.Series:
    """Return a column fetched as dictionary-encoded batches: categorical, or text if it barely repeats."""
    if not parts:
        return _to_pandas(pa.chunked_array([], type=pa.large_string()), name)
    unified = pa.chunked_array(parts).unify_dictionaries(memory_pool=arrow_pool())
    rows = unified.length()
    dictionary = unified.chunk(0).dictionary
    if 2 * len(dictionary) > rows:
        text = pa.chunked_array([chunk.cast(pa.large_string()) for chunk in unified.chunks])
        return _to_pandas(text, name)
    indices = pa.chunked_array([chunk.indices for chunk in unified.chunks], type=pa.int32())
    return _sorted_categorical(indices, dictionary, name)


def as_categorical(values: pd.Series, *, always: bool = True) -> pd.Series | None:
    """Return text as a categorical whose categories are the distinct values, sorted.

    Missing values stay missing. Unless ``always``, None is returned when there
    are more than half as many distinct values as rows.
    """
    text = pa.array(values.array)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    encoded = text.dictionary_encode()
    if not always and 2 * len(encoded.dictionary) > len(values):
        return None
    out = _sorted_categorical(encoded.indices, encoded.dictionary, values.name)
    out.index = values.index
    return out


def drop_unused_categories(values: pd.Series) -> pd.Series:
    """``values.cat.remove_unused_categories()``, by one pass over the codes.

    pandas finds the used categories with :func:`numpy.unique`, a sort of every
    row's code (3.1 s on the five categorical columns of 20 M loaded events);
    marking them in a table of categories is linear. Order and index are kept.
    """
    cat = values.array
    codes = cat.codes
    count = len(cat.categories)
    used = np.zeros(count + 1, dtype=bool)
    used[codes] = True  # a missing value (-1) marks the last slot
    if used[:count].all():
        return values
    keep = np.flatnonzero(used[:count])
    remap = np.full(count + 1, -1, dtype=np.int32)
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    dtype = pd.CategoricalDtype(cat.categories[keep], ordered=cat.ordered)
    return pd.Series(
        pd.Categorical.from_codes(remap[codes], dtype=dtype, validate=False),
        index=values.index,
        name=values.name,
    )


def _sorted_categorical(
    indices: pa.Array | pa.ChunkedArray, dictionary: pa.Array, name: object
) -> pd.Series:
    """Codes into ``dictionary`` (missing where null) as a categorical with sorted categories."""
    distinct = len(dictionary)
    order = pc.sort_indices(dictionary).to_numpy()
    kind = np.int8 if distinct < 2**7 else np.int16 if distinct < 2**15 else np.int32
    rank = np.empty(distinct + 1, dtype=kind)
    rank[order] = np.arange(distinct, dtype=kind)
    rank[-1] = -1  # missing
    codes = rank[indices.fill_null(distinct).to_numpy()]
    categories = pd.Index(dictionary.take(order).to_pylist(), dtype="str")
    return pd.Series(
        pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories)), name=name
    )
