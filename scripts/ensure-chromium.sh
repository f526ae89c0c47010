#!/usr/bin/env bash
# Make sure a headless-capable Chromium is at /usr/bin/chromium (Debian package "chromium").
# Idempotent: does nothing when it is already there. Non-interactive and quiet. Needs root (or sudo)
# and apt access; exits non-zero with a one-line reason on failure.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

fail() { echo "ensure-chromium: $*" >&2; exit 1; }

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || fail "$CHROMIUM is missing and apt-get is not available; install Chromium by hand"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "$CHROMIUM is missing; installing it needs root (run as root or install sudo)"
    SUDO="sudo -n"
fi

# Serialise concurrent callers (parallel test runs); apt itself waits for its own lock up to 5 minutes.
LOCK="${TMPDIR:-/tmp}/banditarena-ensure-chromium.lock"
exec 9>"$LOCK"
if command -v flock >/dev/null 2>&1; then
    flock -w 900 9 || fail "timed out waiting for $LOCK"
fi
[ -x "$CHROMIUM" ] && exit 0   # another caller installed it meanwhile

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -y -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

LOG="$(mktemp "${TMPDIR:-/tmp}/ensure-chromium.XXXXXX.log")"
echo "ensure-chromium: installing Debian package chromium (log: $LOG)" >&2
if ! $SUDO apt-get "${APT_OPTS[@]}" update >"$LOG" 2>&1; then
    fail "apt-get update failed (see $LOG): $(tail -n 1 "$LOG")"
fi
if ! $SUDO apt-get "${APT_OPTS[@]}" install --no-install-recommends chromium fonts-dejavu-core >>"$LOG" 2>&1; then
    fail "apt-get install chromium failed (see $LOG): $(tail -n 1 "$LOG")"
fi
[ -x "$CHROMIUM" ] || fail "apt-get finished but $CHROMIUM is still missing (see $LOG)"
"$CHROMIUM" --version >>"$LOG" 2>&1 || fail "$CHROMIUM is installed but does not run (see $LOG): $(tail -n 1 "$LOG")"
rm -f "$LOG"
echo "ensure-chromium: $("$CHROMIUM" --version 2>/dev/null)" >&2
