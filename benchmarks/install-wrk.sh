#!/usr/bin/env bash
# Install the wrk load generator (Debian package) when it is not on PATH.
# The benchmarks fall back to a slower built-in generator without it.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
    echo "wrk already installed: $(command -v wrk)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-wrk.sh: no apt-get here; install wrk with your package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
echo "installed: $(command -v wrk)"
