#!/usr/bin/env bash
# Set up this machine for the lab and the tests: Debian packages and the project's virtualenv.
# Safe to re-run: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(docker.io mmdebstrap iptables strongswan-pki)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  python3 -m venv .venv
fi
echo "bootstrap: pip install -e .[dev] (pinned)"
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
