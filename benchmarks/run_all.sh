#!/bin/sh
# The full benchmark behind the README table, in one run: small cases first, the
# 10^7 and 10^8 cases last. About 17 minutes on 2 idle cores. Cases that take tens of
# milliseconds run seven times (about one run in fifteen meets a 5-25 ms stall of the
# machine), the others three to five times; every tool gets the same runs, interleaved.
# Every measurement goes to one file, results/runs_<UTC date and time>.jsonl, and
# results/table.md is made from it.
#   PY=...          Python with journeylab and the peers of requirements-peers.txt
#   PEERS_PY=...    Python with retentioneering (see requirements-peers.txt)
set -u
cd "$(dirname "$0")"
PY=${PY:-../.venv/bin/python}
PEERS_PY=${PEERS_PY:-.peers/bin/python}
RUNS=${RUNS:-results/runs_$(date -u +%Y-%m-%dT%H%M).jsonl}
run() { $PY run.py --runs "$RUNS" --peers-python "$PEERS_PY" "$@"; }
run --only path_table --sizes 1e5 1e6 1e7 --repeat 5 --skip pandas_path_table@1e6 pandas_path_table@1e7
run --only path_table --sizes 1e6 --repeat 1 --skip floor journeylab_path_table journeylab_path_table_frame journeylab_path_table_in_memory
run --only markov heuristics bootstrap --repeat 7
run --only bgnbd ab_segments --repeat 3
run --only funnel transitions --sizes 1e5 1e6 --repeat 7
run --only funnel transitions --sizes 1e7 --repeat 1
run --only init_check --sizes 1e7 --repeat 1
run --only report --repeat 3
# out of core: DuckDB's spilling makes single runs vary (8-15 s seen for the same run)
run --only out_of_core --sizes 1e8 --repeat 3 --timeout 2400 --skip journeylab_path_table_relation
run --only out_of_core --sizes 1e8 --repeat 1 --timeout 2400 --skip floor journeylab_path_table
# the report on the last two months of the 10^7-event month file (about 65 s and 3.7 GiB),
# then on all six months of it, 62 M events (about 125 s and 10 GiB)
run --only report_window --sizes 1e7 --repeat 1
run --only report --sizes 1e7 --repeat 1
$PY run.py --table "$RUNS"
echo "measurements: benchmarks/$RUNS"
