#!/usr/bin/env bash
# Installs the system packages and command-line tools the project needs, when they are missing.
set -euo pipefail
UV_VERSION=0.13.9

need_apt=()
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || need_apt+=(tinyproxy)
# The deployment checks render nginx's template as the official image does, and run its healthchecks.
command -v envsubst >/dev/null 2>&1 || need_apt+=(gettext-base)
command -v wget >/dev/null 2>&1 || need_apt+=(wget)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing with apt-get: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  echo "installing uv $UV_VERSION"
  python3 -m pip install -q "uv==$UV_VERSION"
fi
