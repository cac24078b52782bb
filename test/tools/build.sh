#!/usr/bin/env bash
# Builds the real binaries the test bed runs into $BIN (default ./bin), each
# from its own tools module through the Go module proxy. A binary is rebuilt
# only when the module that pins it changed: the stamp beside it records a
# hash of that module's go.mod, go.sum and main sources and of this script.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN:-$root/bin}
mkdir -p "$bin"
export GOWORK=off GOFLAGS=-mod=mod
: "${GOTOOLCHAIN:=go1.27.2}"
export GOTOOLCHAIN

stamp_of() {
  local dir=$1
  (cd "$dir" && cat go.mod go.sum $(find . -name '*.go' | sort) "$root/test/tools/build.sh") | sha256sum | cut -c1-16
}

# build NAME DIR OUTPUTS... -- GO_BUILD_ARGS...
build() {
  local name=$1 dir=$2; shift 2
  local outs=()
  while [ "$1" != "--" ]; do outs+=("$1"); shift; done
  shift
  local want have=""
  want=$(stamp_of "$root/test/tools/$dir")
  [ -f "$bin/.$name.stamp" ] && have=$(cat "$bin/.$name.stamp")
  local missing=0
  for o in "${outs[@]}"; do [ -x "$bin/$o" ] || missing=1; done
  if [ "$want" = "$have" ] && [ $missing = 0 ]; then
    echo "tools: $name is up to date"
    return
  fi
  echo "tools: building $name (${outs[*]})"
  local start=$SECONDS
  (cd "$root/test/tools/$dir" && go build -trimpath "$@")
  echo "$want" > "$bin/.$name.stamp"
  echo "tools: $name built in $((SECONDS - start))s"
}

kube_version=v1.37.1
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37 -X $pkg.gitTreeState=clean"
done

helm_version=v3.22.0
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=37"
done

want=${*:-kube etcd cert-manager helm}
for t in $want; do
  case $t in
    kube) build kube kube kube-apiserver kube-controller-manager kubectl -- -ldflags "$kube_ldflags" -o "$bin/" tool ;;
    etcd) build etcd etcd etcd -- -ldflags "-s -w" -o "$bin/etcd" . ;;
    cert-manager) build cert-manager certmanager cert-manager-controller -- -ldflags "-s -w" -o "$bin/cert-manager-controller" . ;;
    helm) build helm helm helm -- -ldflags "$helm_ldflags" -o "$bin/" tool ;;
    *) echo "tools: unknown tool $t" >&2; exit 2 ;;
  esac
done
