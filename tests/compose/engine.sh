#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io (dockerd, containerd, runc)
# and debootstrap when missing, starts dockerd as root when it is not running, and waits for
# it. On failure it prints one line saying why and exits 1: the compose suite never skips.
set -uo pipefail
fail() { echo "test-compose: $*" >&2; exit 1; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
    [[ $(id -u) == 0 ]] || fail "needs root to install ${need[*]} (apt-get)"
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
        || fail "apt-get install ${need[*]} failed"
fi

docker info >/dev/null 2>&1 && exit 0
[[ $(id -u) == 0 ]] || fail "dockerd is not running and starting it needs root"
log=/var/log/dockerd-test-compose.log
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && exit 0
    kill -0 $! 2>/dev/null || fail "dockerd exited at start: $(tail -n 1 "$log")"
    sleep 1
done
fail "dockerd did not answer within 60 s: $(tail -n 1 "$log")"
