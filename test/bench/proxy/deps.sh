#!/usr/bin/env bash
# Installs what `make bench-proxy` needs from Debian when it is missing:
# wrk (HTTP/1.1 load), h2load (HTTP/2 load, package nghttp2-client), nginx
# (a proxy we compare with, and the upstream every proxy forwards to), its
# stream module for the TCP and TLS passthrough rows (Debian builds it as a
# dynamic module in libnginx-mod-stream) and haproxy (the other proxy we
# compare with). apt-get update runs once, only when something has to be
# installed. perf, which counts the proxies'
# system calls, is optional and not installed here (its Debian package
# follows the kernel).
set -euo pipefail

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(h2load)
for bin in nginx haproxy; do
	if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
		missing+=("$bin")
	fi
done

# stream_module_missing: the installed nginx has its stream module as a
# dynamic module whose file is not there.
stream_module_missing() {
	local nginx v dir
	nginx=$(command -v nginx || echo /usr/sbin/nginx)
	v=$("$nginx" -V 2>&1) || return 1
	case $v in *--with-stream=dynamic*) ;; *) return 1 ;; esac
	dir=$(sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p' <<<"$v")
	[ ! -f "${dir:-/usr/share/nginx/modules}/ngx_stream_module.so" ]
}
if [[ " ${missing[*]} " == *" nginx "* ]] || stream_module_missing; then
	missing+=(nginx-stream)
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
	wrk | haproxy) pkgs+=("$m") ;;
	h2load) pkgs+=(nghttp2-client) ;;
	nginx)
		# nginx-light is the smallest build with the proxy, rewrite, ssl and
		# http2 modules; fall back to the full package where it is not offered.
		if apt-cache show nginx-light >/dev/null 2>&1; then pkgs+=(nginx-light); else pkgs+=(nginx); fi
		;;
	nginx-stream)
		if apt-cache show libnginx-mod-stream >/dev/null 2>&1; then
			pkgs+=(libnginx-mod-stream)
		else
			echo "bench-proxy: no libnginx-mod-stream package here: the TCP and passthrough rows leave nginx out" >&2
		fi
		;;
	esac
done
[ ${#pkgs[@]} -eq 0 ] && exit 0
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
# The Debian packages start a system nginx on port 80 and a system haproxy
# where an init system runs; this benchmark runs its own instances and
# needs nothing from them.
