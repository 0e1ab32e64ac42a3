#!/usr/bin/env bash
# The root of every stand-in image: a Debian bookworm minbase made by debootstrap and turned
# into the image chat-standin/bookworm by `docker import` (no image registry is reachable).
# Its apt sources carry bookworm-updates and bookworm-security, so the stand-ins get current
# packages. Built once: skipped while the image exists.
set -euo pipefail
image=chat-standin/bookworm:base
docker image inspect "$image" >/dev/null 2>&1 && exit 0
root=$(mktemp -d /var/tmp/chat-standin-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
mirror=http://deb.debian.org/debian
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { echo "test-compose: debootstrap failed: $(tail -n 1 "$root.log")" >&2; exit 1; }
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root.log"
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$image" >/dev/null
