"""The leaf core every other package builds on; it imports nothing else of journeylab.

- :mod:`~journeylab.core.errors`: the error classes, the data contract's column
  lists and the uniform checks (``check_in``, ``check_range``, did-you-mean);
- :mod:`~journeylab.core.stages`: stage maps (which events belong to which stage);
- :mod:`~journeylab.core.sql`: the one way into DuckDB;
- :mod:`~journeylab.core.results`: the result-object convention and number formats;
- :mod:`~journeylab.core.viz`: the report theme and plotting helpers;
- :mod:`~journeylab.core.progress`: progress bars that any tqdm-like factory can drive.
"""
