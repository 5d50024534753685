#!/usr/bin/env bash
# Debian packages the test suite talks to as independent peers: mbpoll (a libmodbus Modbus
# master), chrony (an NTP server on a loopback port), chromium (the dashboard's browser tests,
# driven by Playwright; no browser is downloaded) and wrk (the API load benchmark).
# Installs what is missing when run as root with apt-get; otherwise says what to install.
# The BACnet interop tests' peer, bacnet-js (npm @bacnet-js/client, pinned by the committed
# package-lock.json), goes into tests/protocols/bacnet_js/node_modules (ignored by git).
set -euo pipefail
bacnet_js="$(dirname "$0")/../tests/protocols/bacnet_js"
if [ ! -d "$bacnet_js/node_modules/@bacnet-js/client" ]; then
  command -v npm >/dev/null 2>&1 || { echo "the BACnet interop tests need Node.js 20 and npm" >&2; exit 1; }
  npm ci --prefix "$bacnet_js" --no-audit --no-fund --loglevel=error >/dev/null
fi
missing=()
command -v mbpoll >/dev/null 2>&1 || missing+=(mbpoll)
command -v chronyd >/dev/null 2>&1 || [ -x /usr/sbin/chronyd ] || missing+=(chrony)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} from Debian's packages" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
else
  echo "the tests need: ${missing[*]} (Debian: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
