#!/usr/bin/env bash
# Installs the real BitTorrent clients that test/interop.test.ts trades with, from Debian:
# libtorrent's Python bindings (importable only from /usr/bin/python3), aria2 and Transmission;
# and Chromium, which test/report.test.ts opens the HTML run report in (headless, through
# playwright-core, which downloads no browser of its own); and iproute2 (ip, tc, ss), which the
# lab's test (test/lab.test.ts) makes network namespaces with. Does nothing when they are there
# already. Needs root or passwordless sudo, and apt-get.
set -euo pipefail
clients_missing() {
  ! /usr/bin/python3 -c 'import libtorrent' >/dev/null 2>&1 ||
    ! command -v aria2c >/dev/null 2>&1 ||
    ! command -v transmission-daemon >/dev/null 2>&1 ||
    ! command -v chromium >/dev/null 2>&1 ||
    ! command -v ip >/dev/null 2>&1 ||
    ! command -v tc >/dev/null 2>&1 ||
    ! command -v ss >/dev/null 2>&1
}
if clients_missing; then
  as_root=''
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then as_root='sudo -n'; else as_root='none'; fi
  fi
  if [ "$as_root" != 'none' ] && command -v apt-get >/dev/null 2>&1; then
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3-libtorrent aria2 transmission-daemon chromium iproute2 </dev/null
  else
    echo "install-clients: cannot install python3-libtorrent aria2 transmission-daemon chromium iproute2" \
      "(need root and apt-get); the interop, report and lab tests will fail" >&2
  fi
fi

