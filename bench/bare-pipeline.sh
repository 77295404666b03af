#!/usr/bin/env bash
# The baseline of bench/versus_script.py: the work of one Conveyor CI build, its package builds and
# its publish, as one bare shell script that runs every command one after another, with nothing
# around them: the same commands as Conveyor's steps, with the same tools (the build worker's
# bin/: conveyor-sandbox, conveyor-chroot-build, uv), as the same user, in a builder directory of its
# own that keeps its download cache between runs as a builder's does.
#
#   bench/bare-pipeline.sh CLONE_URL COMMIT N APTLY_CONFIG GNUPG_HOME KEY DISTRIBUTION BINDIR \
#       BUILDDIR [RELEASE:SUFFIX...]
#
# (RELEASE:SUFFIX: a target release and its version suffix, conveyor/targets.py: bookworm:+deb12)
# fresh clone → per target release (none: the worker's own, no version suffix): a fresh venv,
# install, tests under coverage (JUnit XML, total, HTML), each in the sandbox on that release's
# system → per release: a CI changelog entry, the source package, the clean build in a chroot of the
# release (conveyor-chroot-build) → aptly: import, merge with the distribution's current snapshot,
# signed publish switch → each version listed in the published Packages.
set -euo pipefail
clone_url=$1 commit=$2 n=$3 aptly_config=$4 gnupg_home=$5 key=$6 dist=$7 bindir=$8 builddir=$9
shift 9
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(":")
export GNUPGHOME=$gnupg_home
aptly() { command aptly -config="$aptly_config" "$@"; }
# as a build worker runs its steps (ops/services.py, steps/python.py UV_ENV)
builder() {
    runuser -u conveyor-build -- env -i PATH="$bindir:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
        LANG=C.UTF-8 HOME="$builddir" CONVEYOR_SANDBOX_ALLOW="$bindir" \
        CONVEYOR_CHROOTS=/var/cache/conveyor/chroots XDG_CACHE_HOME=/var/cache/conveyor-build \
        UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy \
        UV_NO_PROGRESS=1 UV_SYSTEM_CERTS=1 ${http_proxy:+http_proxy=$http_proxy} \
        ${https_proxy:+https_proxy=$https_proxy} ${no_proxy:+no_proxy=$no_proxy} "$@"
}
sandbox() {  # sandbox [--network] RELEASE COMMAND...: in the build's directory, as Conveyor's steps
    local net=()
    [ "$1" != --network ] || { net=(--network); shift; }
    local release=$1
    shift
    builder conveyor-sandbox "${net[@]}" ${release:+--release "$release"} "$builddir" -- "$@"
}

mkdir -p "$builddir"
# git refuses a repository another user owns: the local clone URL, as a worker's set-up says it
printf '[safe]\n\tdirectory = %s\n' "$clone_url" > "$builddir/.gitconfig"
chown conveyor-build: "$builddir" "$builddir/.gitconfig"
builder rm -rf "$builddir/build" "$builddir"/venv* "$builddir"/reports* "$builddir"/*.deb \
    "$builddir"/*.dsc "$builddir"/*.tar.* "$builddir"/*.changes "$builddir"/*.buildinfo
builder git clone -q "$clone_url" "$builddir/build"
cd "$builddir/build"
builder git checkout -q "$commit"
for target in "${targets[@]}"; do
    release=${target%%:*}
    venv=../venv${release:+-$release} reports=../reports${release:+-$release}
    if [ -n "$release" ]; then
        sandbox "$release" uv venv --quiet --clear --python python3 "$venv"
    else
        builder uv venv --quiet --clear --python python3 "$venv"
    fi
    sandbox --network "$release" uv pip install --python "$venv/bin/python" -r requirements-dev.txt \
        >/dev/null
    sandbox "$release" "$venv/bin/python" -m coverage run -m pytest -q --junit-xml "$reports/junit.xml" \
        >/dev/null
    sandbox "$release" "$venv/bin/python" -m coverage report --format=total >/dev/null
    sandbox "$release" "$venv/bin/python" -m coverage html -q -d "$reports/htmlcov"
done

source=$(dpkg-parsechangelog -S Source)
upstream=$(dpkg-parsechangelog -S Version | sed 's/-[^-]*$//')
base="$upstream+bare$(date -u +%Y%m%d.%H%M%S).$n.g${commit:0:7}"
builder cp debian/changelog ../changelog.orig
versions=()
for target in "${targets[@]}"; do
    release=${target%%:*}
    version=$base${target#*:}
    versions+=("$version")
    entry=$(printf '%s (%s) UNRELEASED; urgency=medium\n\n  * bare script build %s\n\n -- Bench <bench@example.com>  %s\n\n' \
        "$source" "$version" "$n" "$(date -R)")
    # the package as Conveyor builds it: a native source package made in the sandbox, then
    # sbuild in a throwaway chroot of the release (worker/bin/conveyor-chroot-build)
    sandbox "$release" sh -c '{ printf "%s\n\n" "$1"; cat ../changelog.orig; } > debian/changelog &&
        mkdir -p debian/source && echo "3.0 (native)" > debian/source/format &&
        dpkg-source --build . >/dev/null' source "$entry"
    builder conveyor-chroot-build "$release" "../${source}_$version.dsc" >/dev/null 2>&1
done

current=$(aptly publish show "$dist" . | sed -n 's/^ *main: \(.*\) \[snapshot\]$/\1/p')
aptly repo create "bare-$n" >/dev/null
aptly repo add "bare-$n" "$builddir"/*.deb >/dev/null
aptly snapshot create "bare-$n-new" from repo "bare-$n" >/dev/null
aptly snapshot merge -no-remove "$dist-bare-$n" "$current" "bare-$n-new" >/dev/null
aptly publish switch -batch -gpg-key="$key" "$dist" . "$dist-bare-$n" >/dev/null
root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rootDir"])' "$aptly_config")
for version in "${versions[@]}"; do
    grep -q "^Version: $version$" "$root/public/dists/$dist/main/binary-amd64/Packages"
    echo "$version"
done
