#!/usr/bin/env bash
# Installs what `make bench-proxy` needs from Debian when it is missing:
# wrk (the load generator) and nginx (the proxy we compare with, and the
# upstream both proxies forward to). apt-get update runs once, only when
# something has to be installed.
set -euo pipefail

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
	missing+=(nginx)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "bench-proxy: ${missing[*]} missing and apt-get is not available: install them by hand" >&2
	exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
	sudo=(sudo)
fi
echo "bench-proxy: installing ${missing[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
pkgs=()
for m in "${missing[@]}"; do
	case $m in
	wrk) pkgs+=(wrk) ;;
	nginx)
		# nginx-light is the smallest build with the proxy and rewrite modules;
		# fall back to the full package where it is not offered.
		if apt-cache show nginx-light >/dev/null 2>&1; then pkgs+=(nginx-light); else pkgs+=(nginx); fi
		;;
	esac
done
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
# The Debian package starts a system nginx on port 80 where an init system
# runs; this benchmark runs its own instances and needs nothing from it.
