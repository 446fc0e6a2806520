#!/usr/bin/env bash
# Set up this machine for the lab and the tests: Debian packages and the project's virtualenv.
# Safe to re-run: it installs only what is missing.
# `scripts/bootstrap.sh vm` installs only what the lab VMs add (QEMU; `make test-kernel` runs it), so that
# `make test`, which boots no VM, does not pay for it.
set -euo pipefail
cd "$(dirname "$0")/.."

# apt_install [apt-get options...] -- PACKAGES...: install those of PACKAGES that are missing.
apt_install() {
  local opts=() missing=()
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "bootstrap: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${opts[@]}" "${missing[@]}" >/dev/null
  fi
}

if [ "${1:-}" = vm ]; then
  # QEMU's x86 system emulator only: the guest boots the kernel of its own image (no host kernel package)
  # from a raw disk (no qemu-utils); its recommends (a GUI, UEFI firmware) are not needed.
  apt_install --no-install-recommends -- qemu-system-x86 mmdebstrap e2fsprogs openssh-client
  exit 0
fi

# chromium and chromium-driver: the helpdesk page's tests drive a real headless browser (tests/svpn_testing/browser.py)
apt_install -- docker.io mmdebstrap iptables strongswan-pki chromium chromium-driver

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  python3 -m venv .venv
fi
echo "bootstrap: pip install -e .[dev] (pinned)"
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
