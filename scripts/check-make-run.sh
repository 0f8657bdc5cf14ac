#!/usr/bin/env bash
# Starts `make run` on the embedded default (SQLite, filesystem broker), waits for the portal on
# port 8000 (PLANQK_PORT), checks it is the production server with DEBUG off (static files served,
# the styled 404, no /media/), checks the demo account exists, kills the worker and waits for the
# supervisor to start it again, then sends Ctrl-C (SIGINT) and checks that the portal, the worker
# and the scheduler all stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PLANQK_PORT:-8000}
base="http://127.0.0.1:$port"
data_dir=$(mktemp -d)
log="$data_dir/make-run.log"
fail() { echo "$1"; cat "$log"; kill -9 -- -"$pid" 2>/dev/null || true; exit 1; }
# The embedded default: none of the production variables.
env -u DATABASE_URL -u CELERY_BROKER_URL -u REDIS_URL -u DJANGO_DEBUG -u DJANGO_SECRET_KEY \
  PLANQK_DATA_DIR="$data_dir" PLANQK_PORT="$port" setsid make run >"$log" 2>&1 &
pid=$!
ok=""
for _ in $(seq 120); do
  if curl -fsS "$base/healthz" >/dev/null 2>&1; then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || fail "make run did not answer on port $port:"
curl -fsS "$base/" | grep -q "Quantum Service Platform" || fail "no start page"
# The production server (granian), not runserver; DEBUG off: hashed static files, styled 404.
web=$(grep -o "started web (pid [0-9]*)" "$log" | head -1 | grep -o "[0-9]*")
tr "\\0" " " </proc/"$web"/cmdline | grep -q "granian" \
  || fail "the web server is not granian"
css=$(curl -fsS "$base/" | grep -o '/static/css/app\.[0-9a-f]*\.css' | head -1)
[ -n "$css" ] || fail "static files are not the collected, hashed ones (DEBUG on?)"
curl -fsS "$base$css" >/dev/null || fail "static file $css not served"
curl -fsS "$base/favicon.ico" >/dev/null || fail "no favicon"
status=$(curl -s -o "$data_dir/404.html" -w '%{http_code}' "$base/no-such-page/")
[ "$status" = 404 ] && grep -q 'class="topbar"' "$data_dir/404.html" || fail "unknown URL is not the styled 404 ($status)"
status=$(curl -s -o /dev/null -w '%{http_code}' "$base/media/")
[ "$status" = 404 ] || fail "/media/ answered $status"
[ "$(stat -c %a "$data_dir/secret-key")" = 600 ] || fail "secret key file is not 0600"
grep -q "Demo account" "$log" || fail "no demo account"
for _ in $(seq 30); do grep -q " ready" "$log" && break; sleep 1; done
grep -q " ready" "$log" || fail "the worker never became ready"
# A worker that dies comes back.
worker=$(grep -o 'started worker (pid [0-9]*)' "$log" | tail -1 | grep -o '[0-9]*')
kill -9 -- -"$worker"
for _ in $(seq 30); do grep -q "restarting worker" "$log" && break; sleep 1; done
grep -q "worker exited with -9; restarting it in" "$log" || fail "the supervisor did not notice the dead worker"
for _ in $(seq 60); do [ "$(grep -c " ready" "$log")" -ge 2 ] && break; sleep 1; done
[ "$(grep -c " ready" "$log")" -ge 2 ] || fail "the worker did not come back"
new_worker=$(grep -o 'started worker (pid [0-9]*)' "$log" | tail -1 | grep -o '[0-9]*')
[ "$new_worker" != "$worker" ] && kill -0 "$new_worker" || fail "no new worker process"
kill -INT -- -"$pid"
for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$pid" 2>/dev/null; then fail "make run did not stop on Ctrl-C"; fi
# Every child inherited PLANQK_DATA_DIR=<our temp dir> or runs from it (a build's pip gets a
# filtered environment): none of them may still be alive.
survivors=$(grep -lsa "PLANQK_DATA_DIR=$data_dir" /proc/[0-9]*/environ 2>/dev/null || true)
for cmdline in /proc/[0-9]*/cmdline; do  # the list is made before the loop starts its own processes
  if tr '\0' ' ' 2>/dev/null <"$cmdline" | grep -qF "$data_dir"; then survivors="$survivors $cmdline"; fi
done
if [ -n "$survivors" ]; then echo "processes survived Ctrl-C: $survivors"; cat "$log"; exit 1; fi
grep -q "\[run\] stopped" "$log" || fail "no clean stop"
echo "make run: production server on :$port, demo account created, dead worker restarted, stopped cleanly"
rm -rf "$data_dir"
