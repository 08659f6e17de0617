#!/usr/bin/env bash
# quantum-trader: install (or upgrade) the core loop as three systemd services.
#
#   sudo bash deploy/install.sh [--dir /opt/quantum-trader] [--no-start]
#
# What it does (the steps of the original ops/fix_core_services_v1.sh, for Node):
#   1. checks node >= 20 and npm
#   2. copies the repository it is run from into the install dir (a staging copy next to
#      it first), runs `npm ci` there (which builds dist/ through the `prepare` script,
#      with the dev dependencies TypeScript needs), then `npm prune --omit=dev`
#   3. creates the system user `quantum`, /var/log/quantum (owned by it) and
#      /etc/quantum/quantum.env (only when missing: an existing one is never touched)
#   4. renders the three units from deploy/*.service into /etc/systemd/system,
#      installs /usr/local/bin/quantum and /etc/logrotate.d/quantum-trader,
#      then systemctl daemon-reload and enable
#      (and the trade journal's unit, quantum-journal.service: installed, not enabled;
#      see docs/journal.md)
#   5. starts risk -> execution -> monitor; after each start checks `systemctl
#      is-active` and GET /health on its port (retries until a deadline); prints one
#      ✅/❌ line per service and DEPLOYMENT SUCCESSFUL, or the failure and the log to read
#      (exit 1).
# Running it again upgrades: the new copy is built beside the old one, then the
# services are stopped (monitor -> execution -> risk), the copies swapped, and the
# services started again. State lives in Redis, so nothing is lost.
#
# For tests and staging (see test/deploy.test.ts), the environment can redirect it:
#   QT_ROOT=/tmp/root     prefix of every system path (/opt, /etc, /var/log, /usr/local/bin);
#                         paths written into the units stay the real ones (like DESTDIR)
#   SYSTEMCTL USERADD CHOWN CURL NPM NODE   commands to use instead of the real ones
#   QT_HEALTH_TIMEOUT (s, default 30)  QT_HEALTH_INTERVAL (s, default 1)
set -euo pipefail
umask 022

readonly UNITS=(quantum-risk-safety.service quantum-execution.service quantum-position-monitor.service)
# Installed beside them but enabled by the operator (it needs a journal.url decision).
readonly JOURNAL_UNIT=quantum-journal.service
# Several accounts (docs/scale-out.md): template units per account and the router; installed, not enabled.
readonly ACCOUNT_UNITS=(quantum-risk-safety@.service quantum-execution@.service quantum-position-monitor@.service quantum-route.service)
readonly SERVICE_USER=quantum
readonly LOG_DIR=/var/log/quantum
readonly ETC_DIR=/etc/quantum
readonly ENV_FILE=/etc/quantum/quantum.env
readonly UNIT_DIR=/etc/systemd/system
readonly WRAPPER=/usr/local/bin/quantum
readonly LOGROTATE=/etc/logrotate.d/quantum-trader
readonly MARKER=.quantum-installed

# unit -> command, log name, port variable, default port
unit_command() { case "$1" in quantum-risk-safety.service) echo risk ;; quantum-execution.service) echo execution ;; *) echo monitor ;; esac; }
unit_log() { case "$1" in quantum-risk-safety.service) echo risk-safety ;; quantum-execution.service) echo execution ;; quantum-journal.service) echo journal ;; *) echo position-monitor ;; esac; }
unit_port_var() { case "$1" in quantum-risk-safety.service) echo QT_RISK_PORT ;; quantum-execution.service) echo QT_EXECUTION_PORT ;; *) echo QT_MONITOR_PORT ;; esac; }
unit_port_default() { case "$1" in quantum-risk-safety.service) echo 8003 ;; quantum-execution.service) echo 8002 ;; *) echo 8004 ;; esac; }

usage() {
  cat <<'EOF'
Usage: sudo bash deploy/install.sh [options]

Installs (or upgrades) quantum-trader from this repository as three systemd services
(quantum-risk-safety, quantum-execution, quantum-position-monitor), starts them in
order and checks each one answers GET /health.

Options:
  --dir DIR             install directory (default /opt/quantum-trader). When DIR is this
                        repository itself, it is built in place instead of copied.
  --no-start            install, write and enable the units, but do not start them
                        (services running from an earlier install are stopped for the
                        upgrade and left stopped)
  --render-units OUT    only render the three unit files into OUT (for checks such as
                        systemd-analyze verify) and exit
  -h, --help            this help

Environment (defaults in brackets):
  QT_ROOT               prefix for every system path, for tests/staging []
  SYSTEMCTL USERADD CHOWN CURL NPM NODE
                        commands to run [systemctl useradd chown curl npm node]
  QT_HEALTH_TIMEOUT     seconds to wait for each /health [30]
  QT_HEALTH_INTERVAL    seconds between /health attempts [1]

Configuration is read by the services from /etc/quantum/quantum.env (written once, never
overwritten). Logs: /var/log/quantum/<service>.log. See docs/operations.md.
EOF
}

die() { echo "❌ install: $*" >&2; exit 1; }
say() { echo "==> $*"; }

# ---- arguments -------------------------------------------------------------------
APP_DIR=/opt/quantum-trader
START=1
RENDER_ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || die "--dir needs a directory"; APP_DIR="$2"; shift 2 ;;
    --dir=*) APP_DIR="${1#--dir=}"; shift ;;
    --no-start) START=0; shift ;;
    --render-units) [ $# -ge 2 ] || die "--render-units needs a directory"; RENDER_ONLY="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# Plain characters only: the path goes unquoted into ExecStart= and through sed.
[[ "$APP_DIR" =~ ^/[A-Za-z0-9._/-]*$ ]] || die "--dir must be an absolute path of letters, digits and . _ - /, got: $APP_DIR"
APP_DIR="${APP_DIR%/}"
[ -n "$APP_DIR" ] || die "--dir must not be /"
case "$APP_DIR/" in
  /home/* | /root/* | /run/user/*)
    die "--dir $APP_DIR is under /home, /root or /run/user, which the units hide from the service (ProtectHome=yes); use a directory such as /opt/quantum-trader" ;;
esac

ROOT="${QT_ROOT:-}"
ROOT="${ROOT%/}"
SRC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

read -ra SYSTEMCTL_CMD <<<"${SYSTEMCTL:-systemctl}"
read -ra USERADD_CMD <<<"${USERADD:-useradd}"
read -ra CHOWN_CMD <<<"${CHOWN:-chown}"
read -ra CURL_CMD <<<"${CURL:-curl}"
read -ra NPM_CMD <<<"${NPM:-npm}"
HEALTH_TIMEOUT="${QT_HEALTH_TIMEOUT:-30}"
HEALTH_INTERVAL="${QT_HEALTH_INTERVAL:-1}"
[[ "$HEALTH_TIMEOUT" =~ ^[0-9]+$ ]] || die "QT_HEALTH_TIMEOUT must be whole seconds, got: $HEALTH_TIMEOUT"

# ---- node --------------------------------------------------------------------------
# Not resolved through symlinks: /usr/bin/node stays valid when Node.js is upgraded.
NODE_BIN="${NODE:-$(command -v node || true)}"
[ -n "$NODE_BIN" ] || die "node is not installed (Node.js >= 20 is required; e.g. https://github.com/nodesource/distributions)"
[[ "$NODE_BIN" =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "NODE must be an absolute path of plain characters (it goes into ExecStart=), got: $NODE_BIN"

render_unit() { # template out: fill in @APP_DIR@ and @NODE@
  sed -e "s#@APP_DIR@#${APP_DIR}#g" -e "s#@NODE@#${NODE_BIN}#g" "$1" >"$2"
  if grep -q '@[A-Z_]*@' "$2"; then die "unrendered placeholder left in $2"; fi
}

if [ -n "$RENDER_ONLY" ]; then
  mkdir -p "$RENDER_ONLY"
  for unit in "${UNITS[@]}" "$JOURNAL_UNIT" "${ACCOUNT_UNITS[@]}"; do render_unit "$SRC_DIR/deploy/$unit" "$RENDER_ONLY/$unit"; done
  echo "rendered ${UNITS[*]} $JOURNAL_UNIT ${ACCOUNT_UNITS[*]} into $RENDER_ONLY (install dir $APP_DIR, node $NODE_BIN)"
  exit 0
fi

say "checking prerequisites"
case "$NODE_BIN/:$(readlink -f "$NODE_BIN")/" in
  /home/* | /root/* | /run/user/* | *:/home/* | *:/root/* | *:/run/user/*)
    die "node is $NODE_BIN, under /home, /root or /run/user (e.g. nvm), which the units hide from the service (ProtectHome=yes); install Node.js >= 20 system-wide (e.g. /usr/bin/node) or run with NODE=/path/to/node" ;;
esac
NODE_VERSION="$("$NODE_BIN" -p 'process.versions.node' 2>/dev/null || true)"
[ -n "$NODE_VERSION" ] || die "$NODE_BIN does not run"
NODE_MAJOR="${NODE_VERSION%%.*}"
[[ "$NODE_MAJOR" =~ ^[0-9]+$ ]] || die "cannot read the node version from: $NODE_VERSION"
[ "$NODE_MAJOR" -ge 20 ] || die "node $NODE_VERSION at $NODE_BIN is too old: Node.js >= 20 is required"
NPM_VERSION="$("${NPM_CMD[@]}" --version 2>/dev/null || true)"
[ -n "$NPM_VERSION" ] || die "npm is not installed (it comes with Node.js >= 20)"
command -v "${CURL_CMD[0]}" >/dev/null || die "curl is not installed (apt-get install -y curl); it checks each service's /health"
command -v "${SYSTEMCTL_CMD[0]}" >/dev/null || die "systemctl not found: this installer needs systemd (for containers, use deploy/docker-compose.core.yml)"
for f in package.json package-lock.json bin/quantum.js deploy/logrotate.conf deploy/quantum-cli.sh "${UNITS[@]/#/deploy/}" "deploy/$JOURNAL_UNIT"; do
  [ -f "$SRC_DIR/$f" ] || die "$SRC_DIR does not look like the quantum-trader repository: $f is missing"
done
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo bash deploy/install.sh): it writes /opt, /etc and /var/log"
fi
if [ -n "$ROOT" ]; then
  echo "    QT_ROOT=$ROOT: system paths are written under it; commands still act on this machine unless overridden (SYSTEMCTL, USERADD, CHOWN, CURL, NPM)"
fi
echo "    node $NODE_VERSION ($NODE_BIN), npm $NPM_VERSION, source $SRC_DIR, install dir $APP_DIR"

# ---- 1. application ----------------------------------------------------------------
DEST="$ROOT$APP_DIR"
STAGE=""
OLD=""
cleanup() {
  if [ -n "$STAGE" ] && [ -d "$STAGE" ]; then rm -rf -- "$STAGE"; fi
  if [ -n "$OLD" ] && [ -d "$OLD" ]; then rm -rf -- "$OLD"; fi
}
trap cleanup EXIT

build_in() { # dir: npm ci (prepare builds dist/ with the dev dependencies), then drop them
  say "npm ci in $1 (builds dist/)"
  (cd "$1" && "${NPM_CMD[@]}" ci --no-audit --no-fund) || die "npm ci failed in $1"
  [ -f "$1/dist/cli/main.js" ] || die "npm ci did not build $1/dist/cli/main.js (the prepare script runs the TypeScript build)"
  say "npm prune --omit=dev in $1"
  (cd "$1" && "${NPM_CMD[@]}" prune --omit=dev --no-audit --no-fund) || die "npm prune failed in $1"
}

IN_PLACE=0
if [ -d "$DEST" ] && [ "$(readlink -f "$DEST")" = "$(readlink -f "$SRC_DIR")" ]; then
  IN_PLACE=1
  say "install dir is this repository: building in place"
  build_in "$DEST"
else
  mkdir -p "$(dirname "$DEST")"
  STAGE="$DEST.new"
  rm -rf -- "$STAGE"
  mkdir -p "$STAGE"
  say "copying $SRC_DIR to $STAGE"
  tar -C "$SRC_DIR" \
    --exclude=./.git --exclude=node_modules --exclude=./dist --exclude=./coverage \
    --exclude=./test-output --exclude=./bench/results --exclude='*.log' \
    --exclude=./quantum.config.json --exclude='./quantum-journal.sqlite*' \
    -cf - . | tar -C "$STAGE" -xf -
  build_in "$STAGE"
  echo "installed by deploy/install.sh from $SRC_DIR on $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STAGE/$MARKER"
  # An operator's quantum.config.json in the install dir survives upgrades.
  if [ -f "$DEST/quantum.config.json" ]; then cp -p "$DEST/quantum.config.json" "$STAGE/"; fi
fi

# ---- 2. user, log folder, config ---------------------------------------------------
if id -u "$SERVICE_USER" >/dev/null 2>&1; then
  say "user $SERVICE_USER exists"
else
  say "creating system user $SERVICE_USER"
  "${USERADD_CMD[@]}" --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "quantum-trader services" "$SERVICE_USER" ||
    die "could not create the user $SERVICE_USER"
fi

say "log folder $LOG_DIR"
mkdir -p "$ROOT$LOG_DIR"
chmod 0750 "$ROOT$LOG_DIR"
for unit in "${UNITS[@]}" "$JOURNAL_UNIT"; do
  # Created here so they belong to the service user (systemd would create them as root).
  touch "$ROOT$LOG_DIR/$(unit_log "$unit").log"
  chmod 0640 "$ROOT$LOG_DIR/$(unit_log "$unit").log"
done
"${CHOWN_CMD[@]}" -R "$SERVICE_USER:$SERVICE_USER" "$ROOT$LOG_DIR" || die "could not chown $LOG_DIR to $SERVICE_USER"

mkdir -p "$ROOT$ETC_DIR"
chmod 0750 "$ROOT$ETC_DIR"
"${CHOWN_CMD[@]}" "root:$SERVICE_USER" "$ROOT$ETC_DIR" || die "could not chown $ETC_DIR"
if [ -e "$ROOT$ENV_FILE" ]; then
  say "$ENV_FILE exists: kept as it is"
else
  say "writing $ENV_FILE (with a new random API token)"
  token="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
  tmp="$ROOT$ENV_FILE.tmp.$$"
  cat >"$tmp" <<EOF
# quantum-trader environment, read by the three systemd units (EnvironmentFile=) and by
# /usr/local/bin/quantum. Written once by deploy/install.sh and never overwritten: edit
# it, then restart the services. Plain KEY=value lines; empty values are ignored.
# Other settings (risk limits, instruments, ...): a JSON file named by QT_CONFIG, see README.

REDIS_URL=redis://127.0.0.1:6379
# 127.0.0.1: reachable from this machine only. 0.0.0.0 listens on every interface.
QT_HOST=127.0.0.1
# Every POST (e.g. /prices) needs "Authorization: Bearer <token>"; GET /health does not.
QT_API_TOKEN=$token
QT_RISK_PORT=8003
QT_EXECUTION_PORT=8002
QT_MONITOR_PORT=8004
#QT_DASHBOARD_PORT=8000
#QT_STREAM_PREFIX=
#QT_CONFIG=/etc/quantum/quantum.config.json
# The trade journal (quantum-journal.service, docs/journal.md): sqlite:PATH or postgres://…
QT_JOURNAL_URL=sqlite:/var/lib/quantum/journal.sqlite
#QT_JOURNAL_SCHEMA=quantum
EOF
  chmod 0640 "$tmp"
  "${CHOWN_CMD[@]}" "root:$SERVICE_USER" "$tmp" || die "could not chown $ENV_FILE"
  mv -f "$tmp" "$ROOT$ENV_FILE"
fi

env_get() { # KEY default: the value in the env file (last one wins), else default
  local value=""
  if [ -r "$ROOT$ENV_FILE" ]; then
    value="$(sed -n "s/^[[:space:]]*$1=//p" "$ROOT$ENV_FILE" | tail -n 1 | sed -e 's/^["'\'']//' -e 's/["'\'']$//' -e 's/[[:space:]]*$//')"
  fi
  echo "${value:-$2}"
}

# ---- 3. stop what runs (upgrade), swap in the new copy -----------------------------
PREVIOUS=0
for unit in "${UNITS[@]}"; do
  if [ -f "$ROOT$UNIT_DIR/$unit" ]; then PREVIOUS=1; fi
done
JOURNAL_WAS_ACTIVE=0
if [ -f "$ROOT$UNIT_DIR/$JOURNAL_UNIT" ] && "${SYSTEMCTL_CMD[@]}" is-active --quiet "$JOURNAL_UNIT"; then
  JOURNAL_WAS_ACTIVE=1
  say "stopping $JOURNAL_UNIT for the upgrade (started again after the others)"
  "${SYSTEMCTL_CMD[@]}" stop "$JOURNAL_UNIT" || echo "    (stop $JOURNAL_UNIT failed; continuing)"
fi
if [ "$PREVIOUS" -eq 1 ]; then
  say "stopping the running services for the upgrade (monitor -> execution -> risk)"
  for ((i = ${#UNITS[@]} - 1; i >= 0; i--)); do
    "${SYSTEMCTL_CMD[@]}" stop "${UNITS[$i]}" || echo "    (stop ${UNITS[$i]} failed; continuing)"
  done
fi
if [ "$IN_PLACE" -eq 0 ]; then
  if [ -e "$DEST" ]; then
    OLD="$DEST.old.$$"
    mv -- "$DEST" "$OLD"
  fi
  mv -- "$STAGE" "$DEST"
  STAGE=""
  say "installed into $APP_DIR"
fi

# ---- 4. units, wrapper, logrotate --------------------------------------------------
say "writing units to $UNIT_DIR"
mkdir -p "$ROOT$UNIT_DIR"
for unit in "${UNITS[@]}" "$JOURNAL_UNIT" "${ACCOUNT_UNITS[@]}"; do
  render_unit "$DEST/deploy/$unit" "$ROOT$UNIT_DIR/$unit.tmp"
  chmod 0644 "$ROOT$UNIT_DIR/$unit.tmp"
  mv -f "$ROOT$UNIT_DIR/$unit.tmp" "$ROOT$UNIT_DIR/$unit"
done

mkdir -p "$(dirname "$ROOT$WRAPPER")"
render_unit "$DEST/deploy/quantum-cli.sh" "$ROOT$WRAPPER.tmp"
chmod 0755 "$ROOT$WRAPPER.tmp"
mv -f "$ROOT$WRAPPER.tmp" "$ROOT$WRAPPER"

mkdir -p "$(dirname "$ROOT$LOGROTATE")"
cp "$DEST/deploy/logrotate.conf" "$ROOT$LOGROTATE.tmp"
chmod 0644 "$ROOT$LOGROTATE.tmp"
mv -f "$ROOT$LOGROTATE.tmp" "$ROOT$LOGROTATE"

say "systemctl daemon-reload; enable ${UNITS[*]}"
"${SYSTEMCTL_CMD[@]}" daemon-reload || die "systemctl daemon-reload failed"
"${SYSTEMCTL_CMD[@]}" enable "${UNITS[@]}" || die "systemctl enable failed"

if [ "$START" -eq 0 ]; then
  echo
  echo "Installed and enabled; not started (--no-start)."
  echo "Start in order: systemctl start ${UNITS[*]}"
  echo "INSTALLED (not started)"
  exit 0
fi

# ---- 5. start in order and check ---------------------------------------------------
HOST="$(env_get QT_HOST 127.0.0.1)"
case "$HOST" in 0.0.0.0 | :: | '[::]') HOST=127.0.0.1 ;; esac
case "$HOST" in *:*) case "$HOST" in \[*) ;; *) HOST="[$HOST]" ;; esac ;; esac

check_health() { # url -> 0 when it answered 200 before the deadline; sets LAST_CODE
  local deadline=$((SECONDS + HEALTH_TIMEOUT))
  LAST_CODE=000
  while :; do
    LAST_CODE="$("${CURL_CMD[@]}" -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true)"
    LAST_CODE="${LAST_CODE:-000}"
    [ "$LAST_CODE" = 200 ] && return 0
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep "$HEALTH_INTERVAL"
  done
}

FAILED=""
NOT_STARTED=()
RESULTS=()
for unit in "${UNITS[@]}"; do
  if [ -n "$FAILED" ]; then NOT_STARTED+=("$unit"); continue; fi
  log="$LOG_DIR/$(unit_log "$unit").log"
  port="$(env_get "$(unit_port_var "$unit")" "$(unit_port_default "$unit")")"
  url="http://$HOST:$port/health"
  say "starting $unit"
  problem=""
  if ! "${SYSTEMCTL_CMD[@]}" start "$unit"; then
    problem="systemctl start failed"
  elif ! check_health "$url"; then
    case "$LAST_CODE" in
      000) problem="$url did not answer within ${HEALTH_TIMEOUT}s" ;;
      503) problem="$url answered 503: the service runs but its bus is down (is Redis up at $(env_get REDIS_URL redis://127.0.0.1:6379)?)" ;;
      *) problem="$url answered HTTP $LAST_CODE within ${HEALTH_TIMEOUT}s, not 200" ;;
    esac
  elif ! "${SYSTEMCTL_CMD[@]}" is-active --quiet "$unit"; then
    problem="systemctl is-active: not active (something else answers on port $port?)"
  fi
  if [ -z "$problem" ]; then
    RESULTS+=("✅ $unit: active, $url 200")
    echo "✅ $unit: active, $url 200"
  else
    FAILED="$unit"
    FAILED_LOG="$log"
    RESULTS+=("❌ $unit: $problem")
    echo "❌ $unit: $problem"
  fi
done

echo
echo "======================================================================"
for line in "${RESULTS[@]}"; do echo "$line"; done
for unit in ${NOT_STARTED[@]+"${NOT_STARTED[@]}"}; do echo "⏸  $unit: not started (an earlier service failed)"; done
echo "======================================================================"
if [ -n "$FAILED" ]; then
  echo "Last lines of $FAILED_LOG:"
  if [ -s "$ROOT$FAILED_LOG" ]; then tail -n 20 "$ROOT$FAILED_LOG" | sed 's/^/    /'; else echo "    (empty)"; fi
  echo
  echo "DEPLOYMENT FAILED: $FAILED is not healthy."
  echo "Read its log: $FAILED_LOG   (tail -n 50 $FAILED_LOG; journalctl -u $FAILED -n 50)"
  exit 1
fi
if [ "$JOURNAL_WAS_ACTIVE" -eq 1 ]; then
  if "${SYSTEMCTL_CMD[@]}" start "$JOURNAL_UNIT" && "${SYSTEMCTL_CMD[@]}" is-active --quiet "$JOURNAL_UNIT"; then
    echo "✅ $JOURNAL_UNIT: active again"
  else
    echo "❌ $JOURNAL_UNIT: did not start again (read $LOG_DIR/journal.log); the loop runs without it"
  fi
else
  echo "Trade journal: systemctl enable --now $JOURNAL_UNIT   (QT_JOURNAL_URL in $ENV_FILE; docs/journal.md)"
fi
echo "Next: quantum validate   (needs traffic: quantum signal BTCUSDT BUY 0.8)"
echo "Logs: tail -f $LOG_DIR/{risk-safety,execution,position-monitor}.log"
echo "✅ DEPLOYMENT SUCCESSFUL ✅"
