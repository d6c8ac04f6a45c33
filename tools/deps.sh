#!/usr/bin/env bash
# deps.sh LIST...: makes sure the Debian packages named in the given list files are installed.
# As root it installs the missing ones with apt-get; otherwise it names them and carries on.
set -u
mapfile -t pkgs < <(cat "$@" | grep -v '^#' | tr -s ' \t' '\n' | grep .)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "memkit: missing Debian packages (run as root to install them): ${missing[*]}" >&2
	exit 0
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
