"""Tables derived from others: an event log from purchases, a value from quantity × price.

A business that exports only its orders still has a journey: each customer's
first order and the ones after it. :func:`events_from_transactions` turns a
loaded transactions table into events, one per order:

1. an order is a distinct ``order_id`` of a customer, or a distinct timestamp
   when the table has no ``order_id``;
2. its time is the earliest line's, its value the sum of its lines (refund
   lines included, so a fully refunded order is worth 0), its channel the
   first line's;
3. an order whose total is negative is a ``refund`` event (cancellations);
4. the customer's first other order is named ``first`` (default
   ``first_purchase``), every later one ``repeat`` (default ``repeat_purchase``).
"""

from __future__ import annotations

import pandas as pd

from journeylab.core.errors import SchemaError, require_columns

__all__ = ["events_from_transactions", "value_query"]


def events_from_transactions(
    transactions: pd.DataFrame, *, first: str = "first_purchase", repeat: str = "repeat_purchase"
) -> pd.DataFrame:
    """One event per order: the customer's first order and the repeat orders after it.

    Examples
    --------
    >>> tx = pd.DataFrame({"user_id": ["a", "a", "a", "b"], "order_id": ["1", "1", "2", "3"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-02-01", "2026-01-05"], utc=True),
    ...     "value": [5.0, 5.0, 7.0, 3.0]})
    >>> events_from_transactions(tx)[["user_id", "event", "value"]].values.tolist()
    [['a', 'first_purchase', 10.0], ['a', 'repeat_purchase', 7.0], ['b', 'first_purchase', 3.0]]
    """
    require_columns(transactions, ("user_id", "timestamp", "value"), what="transactions")
    if first == repeat:
        raise SchemaError(
            f"The first and repeat purchase events need two names, not {first!r} twice."
        )
    order = "order_id" if "order_id" in transactions.columns else "timestamp"
    agg = {"timestamp": "min", "value": "sum"}
    if "channel" in transactions.columns:
        agg["channel"] = "first"
    orders = (
        transactions.dropna(subset=["user_id"])
        .groupby(["user_id", order], sort=False, observed=True, dropna=False)
        .agg(agg)
        .reset_index()
    )
    if order == "order_id":
        orders = orders.drop(columns="order_id")
    orders = orders.sort_values(["user_id", "timestamp"], kind="stable")
    refund = (orders["value"] < 0).to_numpy()
    rank = orders.loc[~refund].groupby("user_id", sort=False).cumcount()
    names = pd.Series("refund", index=orders.index, dtype=object)
    names.loc[rank.index] = [first if r == 0 else repeat for r in rank]
    orders.insert(2, "event", names)
    return orders.reset_index(drop=True)


def value_query(path: str, factors: list[str], *, reader: str | None = None) -> str:
    """Write a DuckDB query reading ``path`` with ``value`` = the product of ``factors`` (quantity × price)."""
    if not factors:
        raise SchemaError(
            "value_from lists no columns; write e.g. value_from: [Quantity, UnitPrice]."
        )
    quoted = " * ".join('TRY_CAST("' + f.replace('"', '""') + '" AS DOUBLE)' for f in factors)
    literal = "'" + str(path).replace("'", "''") + "'"
    if reader is None:
        reader = "read_parquet" if str(path).endswith(".parquet") else "read_csv"
    return f"SELECT *, {quoted} AS value FROM {reader}({literal})"
