#!/usr/bin/env bash
# internal/realservers/build.sh — builds the Go-based third-party servers the
# e2e tests run (imaginary, on libvips, and willnorris.com/go/imageproxy) into
# the cache directory, once: a program already there is not rebuilt.
#
#   CACHE=${TANDEM_REALSERVERS_CACHE:-$HOME/.cache/tandem-realservers}
#   $CACHE/imaginary-v1.2.4/imaginary
#   $CACHE/imageproxy-v0.11.2/imageproxy
#
# The module proxy here refuses `go install pkg@version`, so each module is
# fetched with `go mod download`, copied out of the (read-only) module cache
# and built in the copy. imaginary needs cgo and libvips (Debian libvips-dev).
# The versions must match internal/realservers/servers.go.
set -euo pipefail
CACHE=${TANDEM_REALSERVERS_CACHE:-$HOME/.cache/tandem-realservers}
mkdir -p "$CACHE"

build() { # module version package-dir-in-module binary-name
	local mod=$1 ver=$2 sub=$3 name=$4
	local out="$CACHE/$name-$ver"
	if [[ -x $out/$name ]]; then
		echo "realservers: $out/$name present"
		return
	fi
	local start=$SECONDS dir tmp
	dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "$mod@$ver" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [[ -z $dir || ! -d $dir ]]; then
		echo "realservers: cannot download $mod@$ver" >&2
		return 1
	fi
	tmp=$(mktemp -d)
	cp -r "$dir/." "$tmp/"
	chmod -R u+w "$tmp"
	mkdir -p "$out"
	(cd "$tmp/$sub" && GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -o "$out/$name.tmp" .)
	mv "$out/$name.tmp" "$out/$name"
	rm -rf "$tmp"
	echo "realservers: built $out/$name in $((SECONDS - start)) s"
}

if ! pkg-config --exists vips 2>/dev/null; then
	echo "realservers: libvips-dev is missing (apt-get install libvips-dev); not building imaginary" >&2
	[[ ${CI:-} == true ]] && exit 1
else
	build github.com/h2non/imaginary v1.2.4 . imaginary
fi
build willnorris.com/go/imageproxy v0.11.2 cmd/imageproxy imageproxy
