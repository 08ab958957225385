#!/usr/bin/env bash
# apply-patches.sh: third_party/fasthttp is the pristine upstream release in
# third_party/fasthttp-vX.Y.Z plus the patches in third_party/patches, applied
# in number order. The patched tree stays committed (go.mod's replace builds
# it, so a fresh clone needs no step first); this script keeps the three in
# step. See third_party/fasthttp/TANDEM-PATCHES.md.
#
#   apply-patches.sh              rebuild third_party/fasthttp from pristine + patches
#   apply-patches.sh --check      fail unless third_party/fasthttp equals pristine + patches
#                                 (no network; make lint runs it)
#   apply-patches.sh --import V   replace the pristine tree with upstream version V, trimmed
#                                 (go mod download: needs the module proxy or the cache)
#   apply-patches.sh --check-pristine
#                                 fail unless the pristine tree equals the trimmed module
#                                 of its version (go mod download, as --import)
#   apply-patches.sh --edit NNNN  set up a directory DIR whose a/ is the tree before patch
#                                 NNNN and b/ the tree after it, to change that patch
#   apply-patches.sh --refresh DIR
#                                 after --edit, or after a patch failed to apply and was
#                                 finished by hand in DIR/b: rewrite that patch file as the
#                                 diff DIR/a -> DIR/b (its description kept)
#
# The patched tree holds one file more than pristine + patches, TANDEM-PATCHES.md,
# which rebuilding keeps and checking ignores.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
module=github.com/valyala/fasthttp
patched=$here/fasthttp
patches=$here/patches
notes=TANDEM-PATCHES.md
# The packages tandem builds; everything else upstream ships (tests, examples,
# other packages, repository files) is left out of both trees.
pkgs=(. stackless pprofhandler fasthttpadaptor fasthttputil)

die() { echo "apply-patches: $*" >&2; exit 1; }

# pristine_dir prints the one third_party/fasthttp-v* directory.
pristine_dir() {
	local dirs=("$here"/fasthttp-v*/)
	[ -d "${dirs[0]}" ] || die "cannot find the pristine tree: no $here/fasthttp-v*/"
	[ ${#dirs[@]} -eq 1 ] || die "cannot choose the pristine tree: ${#dirs[@]} directories $here/fasthttp-v*/"
	echo "${dirs[0]%/}"
}

# trim SRC DST copies the files tandem keeps from an upstream module tree.
trim() {
	local src=$1 dst=$2 pkg f name
	for pkg in "${pkgs[@]}"; do
		[ -d "$src/$pkg" ] || die "cannot trim $src: upstream has no package $pkg"
		mkdir -p "$dst/$pkg"
		for f in "$src/$pkg"/*; do
			[ -f "$f" ] || continue
			name=${f##*/}
			case $name in
			*_test.go | README.md | SECURITY.md | TODO) continue ;;
			esac
			cp "$f" "$dst/$pkg/$name"
			chmod u+w "$dst/$pkg/$name" # the module cache is read-only
		done
	done
}

# download V prints the module cache directory of upstream version V.
download() {
	local dir
	dir=$(cd "$here" && go mod download -json "$module@$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] && [ -d "$dir" ] || die "cannot download $module@$1"
	echo "$dir"
}

# apply DIR PATCH [--reject] applies one patch file to the tree DIR, without
# fuzz: with git apply, or patch(1) where there is no git (a source tarball).
apply() {
	if command -v git >/dev/null; then
		# The ceiling keeps git from taking DIR for a path inside some
		# repository above it; outside one, git apply works as patch(1) does.
		(cd "$1" && GIT_CEILING_DIRECTORIES=$(dirname "$1") git apply -p1 "${@:3}" "$2")
	else
		local keep=(--reject-file=-)
		[ "${3:-}" = --reject ] && keep=()
		patch -d "$1" -p1 -F0 -s -f --no-backup-if-mismatch "${keep[@]}" <"$2"
	fi
}

# build OUT [NNNN] writes pristine + patches to OUT/b; with NNNN it stops
# after that patch, leaving OUT/a the tree before it and OUT/patch its name.
# When a patch does not apply, OUT/a is the tree before it and OUT/b that
# tree with the hunks that did apply (and a .rej file for each that did
# not), OUT/patch names it, and build returns 1.
build() {
	local out=$1 stop=${2:-} src p
	src=$(pristine_dir) || return 1
	mkdir -p "$out/b" && cp -R "$src/." "$out/b/" || return 1
	for p in "$patches"/[0-9][0-9][0-9][0-9]-*.patch; do
		[ -f "$p" ] || { echo "apply-patches: cannot find patches in $patches" >&2; return 1; }
		rm -rf "$out/a" && cp -R "$out/b" "$out/a" || return 1
		# A patch with no diff yet (a new one, before its first --edit) is
		# only its description.
		if grep -q '^--- ' "$p" && ! apply "$out/b" "$p" 2>"$out/err"; then
			(apply "$out/b" "$p" --reject 2>/dev/null) || true
			echo "${p##*/}" >"$out/patch"
			cat "$out/err" >&2
			echo "apply-patches: cannot apply ${p##*/} to ${src##*/} + the patches before it" >&2
			return 1
		fi
		if [ -n "$stop" ] && [[ ${p##*/} == "$stop"-* ]]; then
			echo "${p##*/}" >"$out/patch"
			return 0
		fi
	done
	[ -z "$stop" ] || { echo "apply-patches: there is no patch $stop-*.patch" >&2; return 1; }
	rm -rf "$out/a"
}

# mkpatch DIR prints the diff DIR/a -> DIR/b in the patches' form (no
# timestamps, so that a rewrite changes only what changed).
mkpatch() {
	local rc=0
	(cd "$1" && diff -ruN a b) >"$1/diff" || rc=$?
	[ "$rc" -le 1 ] || die "cannot diff $1/a and $1/b"
	sed -E 's/^((---|\+\+\+) [^\t]+)\t.*/\1/' "$1/diff"
}

tmp=
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT

case ${1:-} in
"")
	tmp=$(mktemp -d)
	if ! build "$tmp"; then
		[ -f "$tmp/patch" ] || exit 1
		echo "apply-patches: $tmp/a is the tree before $(cat "$tmp/patch"), $tmp/b the same with the hunks that applied and a .rej file for each that did not: finish $tmp/b by hand, then run $0 --refresh $tmp and rebuild" >&2
		tmp= # kept for the hand fix
		exit 1
	fi
	find "$patched" -mindepth 1 -maxdepth 1 ! -name "$notes" -exec rm -rf {} +
	cp -R "$tmp/b/." "$patched/"
	echo "apply-patches: rebuilt ${patched#"$here"/} from $(basename "$(pristine_dir)") + $(ls "$patches" | wc -l) patches"
	;;
--check)
	tmp=$(mktemp -d)
	build "$tmp" || die "cannot check: the patches do not apply (run $0 to fix them)"
	if ! diff -r -x "$notes" "$tmp/b" "$patched" >"$tmp/diff"; then
		head -n 40 "$tmp/diff" >&2
		die "third_party/fasthttp differs from $(basename "$(pristine_dir)") + third_party/patches (above: < pristine + patches, > committed); change the patches, not the tree, then run $0"
	fi
	echo "apply-patches: third_party/fasthttp is $(basename "$(pristine_dir)") + $(ls "$patches" | wc -l) patches"
	;;
--import)
	[ -n "${2:-}" ] || die "usage: $0 --import vX.Y.Z"
	src=$(download "$2")
	old=$(pristine_dir 2>/dev/null || true)
	tmp=$(mktemp -d)
	trim "$src" "$tmp/t"
	[ -z "$old" ] || rm -rf "$old"
	mkdir -p "$here/fasthttp-$2"
	cp -R "$tmp/t/." "$here/fasthttp-$2/"
	echo "apply-patches: ${here##*/}/fasthttp-$2 holds $module@$2 (trimmed)${old:+, ${old##*/} removed}; now run $0"
	;;
--check-pristine)
	dir=$(pristine_dir)
	src=$(download "${dir##*/fasthttp-}")
	tmp=$(mktemp -d)
	trim "$src" "$tmp/t"
	diff -r "$tmp/t" "$dir" >&2 || die "${dir##*/} is not $module@${dir##*/fasthttp-} (trimmed)"
	;;
--edit)
	[[ ${2:-} =~ ^[0-9]{4}$ ]] || die "usage: $0 --edit NNNN (a patch's number)"
	tmp=$(mktemp -d)
	build "$tmp" "$2" || exit 1
	echo "apply-patches: $tmp/a is the tree before $(cat "$tmp/patch"), $tmp/b the tree after it: change $tmp/b, then run $0 --refresh $tmp and rebuild"
	tmp= # kept for the edit
	;;
--refresh)
	work=${2:-}
	[ -f "$work/patch" ] && [ -d "$work/a" ] && [ -d "$work/b" ] || die "usage: $0 --refresh DIR (the directory a failed rebuild named)"
	p=$patches/$(cat "$work/patch")
	find "$work/b" \( -name '*.rej' -o -name '*.orig' \) -delete
	{
		sed '/^diff /,$d' "$p" # the description above the first diff
		mkpatch "$work"
	} >"$p.new"
	mv "$p.new" "$p"
	echo "apply-patches: rewrote ${p#"$here"/}; now run $0"
	;;
*)
	die "usage: $0 [--check | --import vX.Y.Z | --check-pristine | --edit NNNN | --refresh DIR]"
	;;
esac
