#!/usr/bin/env bash
# Starts `make run` on the embedded default (SQLite, filesystem broker), waits for the portal on
# port 8000, checks the demo account exists, then sends Ctrl-C (SIGINT) and checks that the
# portal, the worker and the scheduler all stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=$(mktemp -d)
log="$data_dir/make-run.log"
# The embedded default: none of the production variables.
env -u DATABASE_URL -u CELERY_BROKER_URL -u REDIS_URL PLANQK_DATA_DIR="$data_dir" \
  setsid make run >"$log" 2>&1 &
pid=$!
ok=""
for _ in $(seq 120); do
  if curl -fsS http://127.0.0.1:8000/healthz >/dev/null 2>&1; then ok=1; break; fi
  sleep 1
done
if [ -z "$ok" ]; then echo "make run did not answer on port 8000:"; cat "$log"; kill -9 -- -"$pid" || true; exit 1; fi
curl -fsS http://127.0.0.1:8000/ | grep -q "Quantum Service Platform"
grep -q "Demo account" "$log"
grep -q "ready" "$log" || { sleep 5; grep -q "ready" "$log"; }
kill -INT -- -"$pid"
for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$pid" 2>/dev/null; then echo "make run did not stop on Ctrl-C"; cat "$log"; kill -9 -- -"$pid"; exit 1; fi
# Every child inherited PLANQK_DATA_DIR=<our temp dir> or runs from it (a build's pip gets a
# filtered environment): none of them may still be alive.
survivors=$(grep -lsa "PLANQK_DATA_DIR=$data_dir" /proc/[0-9]*/environ 2>/dev/null || true)
for cmdline in /proc/[0-9]*/cmdline; do  # the list is made before the loop starts its own processes
  if tr '\0' ' ' <"$cmdline" 2>/dev/null | grep -qF "$data_dir"; then survivors="$survivors $cmdline"; fi
done
if [ -n "$survivors" ]; then echo "processes survived Ctrl-C: $survivors"; exit 1; fi
grep -q "\[run\] stopped" "$log"
echo "make run: answered on :8000, demo account created, stopped cleanly"
rm -rf "$data_dir"
