#!/usr/bin/env bash
# The suite N times in a row (default 3) on a clean clone of HEAD, with two CPU-bound processes
# beside it the whole time, as issue #23 asks of the suite. Logs, load average samples (every
# 30 s) and a one-line summary per run go to the folder given as OUT (default /tmp/featviz-loaded).
#
# The two loads are busy loops, or the commands given as LOAD1 and LOAD2 (for example two
# single-threaded benchmark processes); a command that ends before the runs do is followed by a
# busy loop, so the machine stays loaded to the end. Started in the background (`nohup ... &`)
# its commands have SIGINT ignored; the Ctrl-C tests restore it in their child
# (tests/conftest.py: interruptible).
set -uo pipefail
runs=${1:-3}
out=${OUT:-/tmp/featviz-loaded}
root=$(cd "$(dirname "$0")/.." && pwd)
spin='python3 -c "while True: pass"'
mkdir -p "$out"
rm -rf "$out/clone" && git clone -q "$root" "$out/clone"
echo "clone of $(git -C "$out/clone" rev-parse --short HEAD)" > "$out/summary.txt"
echo "loads: ${LOAD1:-busy loop} | ${LOAD2:-busy loop}" >> "$out/summary.txt"
setsid bash -c "${LOAD1:-true}; exec $spin" > "$out/load1.log" 2>&1 & h1=$!
setsid bash -c "${LOAD2:-true}; exec $spin" > "$out/load2.log" 2>&1 & h2=$!
( while true; do echo "$(date +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 30; done ) > "$out/loadavg.txt" & lp=$!
for n in $(seq 1 "$runs"); do
  start=$(date +%s)
  (cd "$out/clone" && bash .ci/run) > "$out/run$n.log" 2>&1; rc=$?
  end=$(date +%s)
  echo "run $n rc=$rc seconds=$((end - start)) $(tail -1 "$out/run$n.log")" >> "$out/summary.txt"
done
kill -- -$h1 -$h2 2>/dev/null; kill $lp
cat "$out/summary.txt"
