#!/usr/bin/env bash
# Installs what the build needs beyond the Swift toolchain: Debian's libcmark-dev (the CommonMark
# parser the workbook reads chapters with) and pkg-config (SwiftPM finds libcmark through it).
set -euo pipefail
if pkg-config --exists libcmark 2>/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install-deps: libcmark is missing and this is not a Debian-like system; install libcmark-dev and pkg-config" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing libcmark-dev and pkg-config with apt-get" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libcmark-dev pkg-config >/dev/null
pkg-config --exists libcmark
