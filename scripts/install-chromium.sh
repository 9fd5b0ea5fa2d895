#!/bin/sh
# Install Debian's chromium for the browser tests (tests/e2e/test_browser.py), which
# drive it with Playwright through executable_path: Playwright never downloads a
# browser here. Without root or apt the tests skip and say why; this never fails.
set -u
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get; the browser tests will be skipped" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install-chromium: not root; the browser tests will be skipped" >&2
        exit 0
    fi
fi
echo "install-chromium: installing Debian's chromium (once)" >&2
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }; then
    echo "install-chromium: apt-get failed; the browser tests will be skipped" >&2
fi
exit 0
