#!/bin/sh
# The full benchmark in the order the README table was made: small cases first,
# the 10^7 and 10^8 cases last. About 30 minutes on 2 busy cores.
set -u
cd "$(dirname "$0")"
PY=../.venv/bin/python
$PY run.py --only path_table --sizes 1e5 1e6 1e7 --repeat 3 --skip pandas_path_table@1e6 pandas_path_table@1e7
$PY run.py --only path_table --sizes 1e6 --repeat 1 --skip floor journeylab_path_table journeylab_path_table_frame
$PY run.py --only markov heuristics bgnbd ab_segments --repeat 3
$PY run.py --only funnel transitions --sizes 1e5 1e6 --repeat 3
$PY run.py --only funnel transitions --sizes 1e7 --repeat 1
$PY run.py --only report --repeat 1
$PY run.py --only out_of_core --sizes 1e8 --repeat 1 --timeout 2400
$PY run.py --table results/runs.jsonl
