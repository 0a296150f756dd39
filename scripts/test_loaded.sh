#!/usr/bin/env bash
# The suite N times in a row (default 3) on a clean clone of HEAD, each run with two CPU-bound
# processes beside it, as issue #23 asks of the suite. Logs, load average samples (every 30 s)
# and a one-line summary per run go to the folder given as OUT (default /tmp/featviz-loaded).
# Started in the background (`nohup ... &`) its commands have SIGINT ignored; the Ctrl-C tests
# restore it in their child (tests/conftest.py: interruptible).
set -uo pipefail
runs=${1:-3}
out=${OUT:-/tmp/featviz-loaded}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
rm -rf "$out/clone" && git clone -q "$root" "$out/clone"
echo "clone of $(git -C "$out/clone" rev-parse --short HEAD)" > "$out/summary.txt"
for n in $(seq 1 "$runs"); do
  python3 -c "while True: pass" & h1=$!
  python3 -c "while True: pass" & h2=$!
  ( while true; do echo "$(date +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 30; done ) > "$out/load$n.txt" & lp=$!
  start=$(date +%s)
  (cd "$out/clone" && bash .ci/run) > "$out/run$n.log" 2>&1; rc=$?
  end=$(date +%s)
  kill $h1 $h2 $lp
  echo "run $n rc=$rc seconds=$((end - start)) $(tail -1 "$out/run$n.log")" >> "$out/summary.txt"
done
cat "$out/summary.txt"
