#!/usr/bin/env bash
# The baseline of bench/versus_script.py: the work of one Conveyor CI build and its publish, as
# one bare shell script that runs every command one after another, with nothing around them.
#
#   bench/bare-pipeline.sh CLONE_URL COMMIT N APTLY_CONFIG GNUPG_HOME KEY DISTRIBUTION
#
# fresh clone → fresh venv → pip install → pytest under coverage (JUnit XML, total, HTML) →
# a CI changelog entry → source package → sbuild in a chroot (conveyor-sbuild) → aptly: import,
# merge with the distribution's current snapshot, signed publish switch → the version listed in
# the published Packages.
set -euo pipefail
clone_url=$1 commit=$2 n=$3 aptly_config=$4 gnupg_home=$5 key=$6 dist=$7
work=$(mktemp -d /srv/conveyor-tests/bare-XXXXXX)
trap 'rm -rf "$work"' EXIT
export GNUPGHOME=$gnupg_home
aptly() { command aptly -config="$aptly_config" "$@"; }

git clone -q "$clone_url" "$work/src"
cd "$work/src"
git checkout -q "$commit"
/usr/bin/python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
"$work/venv/bin/python" -m coverage run -m pytest -q --junitxml="$work/junit.xml" >/dev/null
"$work/venv/bin/python" -m coverage report --format=total >/dev/null
"$work/venv/bin/python" -m coverage html -q -d "$work/htmlcov"

source=$(dpkg-parsechangelog -S Source)
upstream=$(dpkg-parsechangelog -S Version | sed 's/-[^-]*$//')
version="$upstream+bare$(date -u +%Y%m%d.%H%M%S).$n.g${commit:0:7}"
{ printf '%s (%s) UNRELEASED; urgency=medium\n\n  * bare script build %s\n\n -- Bench <bench@example.com>  %s\n\n' \
    "$source" "$version" "$n" "$(date -R)"; cat debian/changelog; } > "$work/changelog"
mv "$work/changelog" debian/changelog
# the package as Conveyor builds it: a native source package, then sbuild in a throwaway chroot
# of this machine's release (worker/bin/conveyor-sbuild), as the build user
echo '3.0 (native)' > debian/source/format
dpkg-source --build . >/dev/null
chown -R conveyor-build: "$work"
runuser -u conveyor-build -- env HOME="$work" CONVEYOR_CHROOTS=/var/cache/conveyor/chroots \
    "$(dirname "$0")/../worker/bin/conveyor-sbuild" "" "$work/${source}_$version.dsc" >/dev/null 2>&1

current=$(aptly publish show "$dist" . | sed -n 's/^ *main: \(.*\) \[snapshot\]$/\1/p')
aptly repo create "bare-$n" >/dev/null
aptly repo add "bare-$n" "$work"/*.deb >/dev/null
aptly snapshot create "bare-$n-new" from repo "bare-$n" >/dev/null
aptly snapshot merge -no-remove "$dist-bare-$n" "$current" "bare-$n-new" >/dev/null
aptly publish switch -batch -gpg-key="$key" "$dist" . "$dist-bare-$n" >/dev/null
root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rootDir"])' "$aptly_config")
grep -q "^Version: $version$" "$root/public/dists/$dist/main/binary-amd64/Packages"
echo "$version"
