#!/usr/bin/env bash
# Installs the Debian 12 packages talos-gcp needs to build and test, when missing.
# Safe to re-run: it asks apt only for what is not installed yet.
set -euo pipefail

packages=(
  gcc clang clang-format libclang-rt-14-dev pkg-config meson ninja-build git
  libcurl4-openssl-dev libjansson-dev libyajl-dev libyaml-dev libmnl-dev libmicrohttpd-dev
  libssl-dev libgnutls28-dev libcmocka-dev libsqlite3-dev
  python3 python3-yaml python3-jsonschema iproute2 curl ca-certificates binutils file
  scdoc man-db groff-base zsh libnftables-dev nftables haproxy
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# apt-get update once per machine (the lists are empty on a fresh one).
if [ ! -e /var/lib/apt/lists/lock ] || [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ]; then
  $sudo apt-get update -qq
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
