#!/bin/bash
# CPU per accepted event of every process of the stack, over one B=1000 load and its drain.
#
# Runs bench/ingest.py (one run, --seconds S, default 30) and reads utime+stime of each
# process (/proc/<pid>/stat) when the load generator starts and when the batch phase's
# line is printed (everything stored); prints CPU seconds and microseconds per accepted
# event for each. Single runs vary by up to 25 % on a shared machine: compare commits
# back to back. Usage: bench/cpu_per_role.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
LOG=$(mktemp)
.venv/bin/python bench/ingest.py --runs 1 --seconds "${1:-30}" --batches 1000 --probes 5 >"$LOG" 2>&1 &
BENCH=$!
snap() {
  for pid in $(pgrep -f "deploy.cli (worker|api)|kafka.Kafka|redis-server"); do
    role=$(ps -o args= -p "$pid" | awk '{print $NF}' | sed 's|.*/||')
    echo "$role $pid $(awk '{print $14+$15}' "/proc/$pid/stat")"
  done
}
for _ in $(seq 1 600); do pgrep -f bench/loadgen.py >/dev/null && break; sleep 0.5; done
snap >"$LOG.0"
for _ in $(seq 1 1200); do grep -q "batch 1000:" "$LOG" && break; sleep 0.5; done
snap >"$LOG.1"
EVENTS=$(grep -o '"events_accepted": [0-9]*' "$LOG" | head -1 | awk '{print $2}')
echo "accepted events: $EVENTS"
join -j 2 <(sort -k2 "$LOG.0") <(sort -k2 "$LOG.1") | awk -v ev="$EVENTS" \
  '{d = ($5 - $3) / 100; printf "%-18s %7.1f cpu-s %6.1f us/event\n", $2, d, d * 1e6 / ev}'
grep -o '"events_per_s": [0-9.]*' "$LOG" | head -2 | sed 's/^/accepted, then stored: /'
kill -INT "$BENCH" 2>/dev/null || true
wait "$BENCH" 2>/dev/null || true
