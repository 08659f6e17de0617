#!/usr/bin/env bash
# quantum-trader: remove the systemd deployment made by deploy/install.sh.
#
#   sudo bash deploy/uninstall.sh [--dir /opt/quantum-trader] [--purge]
#
# Stops (monitor -> execution -> risk) and disables the three services, removes their
# units, /usr/local/bin/quantum, /etc/logrotate.d/quantum-trader and the install dir
# (only when install.sh copied it there: a repository built in place is left alone).
# Keeps /etc/quantum (config, API token) and /var/log/quantum unless --purge, which also
# removes the `quantum` user. Trading state lives in Redis and is never touched, nor is
# the trade journal's database (/var/lib/quantum, or the PostgreSQL in QT_JOURNAL_URL).
#
# Same test hooks as install.sh: QT_ROOT, SYSTEMCTL, USERDEL.
set -euo pipefail

readonly UNITS=(quantum-risk-safety.service quantum-execution.service quantum-position-monitor.service)
readonly JOURNAL_UNIT=quantum-journal.service
readonly ACCOUNT_UNITS=(quantum-risk-safety@.service quantum-execution@.service quantum-position-monitor@.service quantum-route.service)
readonly SERVICE_USER=quantum

usage() {
  cat <<'EOF'
Usage: sudo bash deploy/uninstall.sh [--dir DIR] [--purge]

  --dir DIR   install directory used by install.sh (default /opt/quantum-trader)
  --purge     also remove /etc/quantum, /var/log/quantum and the quantum user
  -h, --help  this help

Trading state (streams and snapshots in Redis) is not touched.
EOF
}

APP_DIR=/opt/quantum-trader
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || { echo "uninstall: --dir needs a directory" >&2; exit 2; }; APP_DIR="$2"; shift 2 ;;
    --dir=*) APP_DIR="${1#--dir=}"; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "uninstall: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
APP_DIR="${APP_DIR%/}"
case "$APP_DIR" in
  /?*) ;;
  *) echo "uninstall: --dir must be an absolute path other than /, got: $APP_DIR" >&2; exit 2 ;;
esac

ROOT="${QT_ROOT:-}"
ROOT="${ROOT%/}"
read -ra SYSTEMCTL_CMD <<<"${SYSTEMCTL:-systemctl}"
read -ra USERDEL_CMD <<<"${USERDEL:-userdel}"
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
  echo "uninstall: run as root (sudo bash deploy/uninstall.sh)" >&2
  exit 1
fi

echo "==> stopping and disabling the services (monitor -> execution -> risk)"
# The journal first: it reads what the others publish.
"${SYSTEMCTL_CMD[@]}" stop "$JOURNAL_UNIT" 2>/dev/null || true
# Then the router and every account's instances (docs/scale-out.md).
"${SYSTEMCTL_CMD[@]}" stop quantum-route.service 'quantum-*@*.service' 2>/dev/null || true
for ((i = ${#UNITS[@]} - 1; i >= 0; i--)); do
  "${SYSTEMCTL_CMD[@]}" stop "${UNITS[$i]}" 2>/dev/null || true
done
"${SYSTEMCTL_CMD[@]}" disable "${UNITS[@]}" "$JOURNAL_UNIT" 2>/dev/null || true

echo "==> removing units, /usr/local/bin/quantum, /etc/logrotate.d/quantum-trader"
for unit in "${UNITS[@]}" "$JOURNAL_UNIT" "${ACCOUNT_UNITS[@]}"; do rm -f -- "$ROOT/etc/systemd/system/$unit"; done
"${SYSTEMCTL_CMD[@]}" daemon-reload || true
"${SYSTEMCTL_CMD[@]}" reset-failed "${UNITS[@]}" "$JOURNAL_UNIT" 2>/dev/null || true
rm -f -- "$ROOT/usr/local/bin/quantum" "$ROOT/etc/logrotate.d/quantum-trader"

if [ -f "$ROOT$APP_DIR/.quantum-installed" ]; then
  echo "==> removing $APP_DIR"
  rm -rf -- "$ROOT$APP_DIR"
elif [ -d "$ROOT$APP_DIR" ]; then
  echo "==> $APP_DIR was not copied there by install.sh (built in place?): left as it is"
fi

if [ "$PURGE" -eq 1 ]; then
  echo "==> --purge: removing /etc/quantum, /var/log/quantum and the user $SERVICE_USER"
  rm -rf -- "$ROOT/etc/quantum" "$ROOT/var/log/quantum"
  if [ -n "${USERDEL:-}" ] || id -u "$SERVICE_USER" >/dev/null 2>&1; then
    "${USERDEL_CMD[@]}" "$SERVICE_USER" || echo "    (userdel $SERVICE_USER failed; remove it by hand)"
  fi
  echo "UNINSTALLED (purged)"
else
  echo "Kept: /etc/quantum/quantum.env (config, API token) and /var/log/quantum (logs); --purge removes them."
  echo "UNINSTALLED"
fi
