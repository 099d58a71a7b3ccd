#!/bin/sh
# Waits for a nydusd API socket and polls GET /api/v1/daemon with curl until the daemon
# reports the wanted state, the way containerd's nydus-snapshotter does: first wait for
# the socket file (100 attempts), then poll the state (20 attempts), 100 ms plus up to
# 100 ms of jitter between attempts. Exit 0 once the state is reached, 1 otherwise.
#
#   poll.sh SOCKET [STATE]          STATE defaults to RUNNING
#
# SOCKET_ATTEMPTS and STATE_ATTEMPTS override the attempt counts.
set -eu

sock=${1:?usage: poll.sh SOCKET [STATE]}
want=${2:-RUNNING}
socket_attempts=${SOCKET_ATTEMPTS:-100}
state_attempts=${STATE_ATTEMPTS:-20}

pause() {
  # 100 ms + 0..99 ms of jitter (awk's rand, seeded from the clock and pid).
  sleep "$(awk -v s="$$$(date +%N)" 'BEGIN { srand(s % 2147483647); printf "0.%03d", 100 + int(rand() * 100) }')"
}

i=0
until [ -S "$sock" ]; do
  i=$((i + 1))
  if [ "$i" -ge "$socket_attempts" ]; then
    echo "poll: no socket at $sock after $i attempts" >&2
    exit 1
  fi
  pause
done
echo "poll: socket $sock is there"

body=$(mktemp)
trap 'rm -f "$body"' EXIT
i=0
state=
while :; do
  # -w prints the status; the body goes to a file so an error body can be shown.
  code=$(curl -sS --unix-socket "$sock" -o "$body" -w '%{http_code}' http://localhost/api/v1/daemon || echo 000)
  if [ "$code" = 200 ]; then
    state=$(sed -n 's/.*"state":"\([A-Z]*\)".*/\1/p' "$body")
    echo "poll: state $state"
    [ "$state" = "$want" ] && exit 0
  else
    # Error bodies are {"code":"UNDEFINED","message":...}: show the message.
    echo "poll: HTTP $code $(sed -n 's/.*"message":"\([^"]*\)".*/\1/p' "$body")" >&2
  fi
  i=$((i + 1))
  if [ "$i" -ge "$state_attempts" ]; then
    echo "poll: state is ${state:-unknown}, not $want, after $i attempts" >&2
    exit 1
  fi
  pause
done
