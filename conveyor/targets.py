"""Target releases: one commit, one package per Debian release a team runs (`targets`).

A project with `targets = ["bookworm", "trixie"]` gets, from one commit, a package built in a
chroot of each release. They are told apart, as Debian's own stable updates are, by a suffix on
the CI version: `1.4.0+ci20261204.140521.7.g4d4a7f9+deb12` for bookworm, `…+deb13` for trixie.
So the pool never holds two files of one name, and a host upgraded from bookworm to trixie
upgrades the package too (`+deb13` sorts after `+deb12`).

A distribution of such a project publishes one component per target (`snowbird-staging
bookworm`, `snowbird-staging trixie`): a host of release R reads one apt line per stage, with
component R. The distribution's state stays one aptly snapshot holding every target's packages
(the history, the promotion and the rollback move it whole); what each component serves is
derived from it by aptly's filter on the suffix (`<state>~<target>`), and one `aptly publish
switch` changes every component at once, so no stage ever serves one commit for bookworm and
another for trixie.

A project without `targets` builds for the worker's own release, with no suffix, into the
repository's one component (`[repository] component`), as before.
"""

from __future__ import annotations

# Debian's releases and the suffix of their packages, as Debian's stable updates (`+deb12u1`)
SUFFIXES = {"bullseye": "deb11", "bookworm": "deb12", "trixie": "deb13", "forky": "deb14"}
DERIVED = "~"  # `<state>~<target>`: what the component `target` of a state publishes


def suffix(target: str) -> str:
    try:
        return SUFFIXES[target]
    except KeyError:
        raise ValueError(
            f"{target!r} is not a Debian release Conveyor knows: {', '.join(SUFFIXES)}"
        ) from None


def problem(targets: tuple[str, ...]) -> str | None:
    """What is wrong with a project's `targets`, for its settings error; None if nothing."""
    unknown = [t for t in targets if t not in SUFFIXES]
    if unknown:
        return f"{unknown[0]!r} is not a Debian release Conveyor builds for: {', '.join(SUFFIXES)}"
    if len(set(targets)) != len(targets):
        return f"names a release twice: {list(targets)}"
    return None


def version(base: str, target: str) -> str:
    """The version of `target`'s package of the CI version `base`."""
    return f"{base}+{suffix(target)}"


def base_of(version_: str, targets: tuple[str, ...] | list[str]) -> tuple[str, str | None]:
    """(the CI version, the target) of a package's version; (version, None) without a target's
    suffix."""
    for target in targets:
        end = f"+{suffix(target)}"
        if version_.endswith(end):
            return version_[: -len(end)], target
    return version_, None


def component_filter(target: str) -> str:
    """aptly's query for the packages of `target` in a state (the suffix ends the version)."""
    return f"Version (% *+{suffix(target)})"


def derived(state: str, target: str) -> str:
    """The snapshot that the component `target` publishes for `state`."""
    return f"{state}{DERIVED}{target}"


def state_of(sources: list[dict]) -> str:
    """The state a distribution publishes, from `aptly publish show -json`'s Sources: the one
    snapshot of a plain distribution, or the state every component's snapshot is derived from.
    Raises ValueError when components disagree (switched by hand, outside Conveyor)."""
    if not sources:
        raise ValueError("publishes no snapshot")
    if len(sources) == 1 and DERIVED not in sources[0]["Name"]:
        return sources[0]["Name"]
    states = set()
    for source in sources:
        name, component = source["Name"], source.get("Component", "")
        end = f"{DERIVED}{component}"
        if not name.endswith(end):
            raise ValueError(f"its component {component!r} publishes {name!r}, not a state's")
        states.add(name[: -len(end)])
    if len(states) != 1:
        raise ValueError(f"its components publish different states: {', '.join(sorted(states))}")
    return states.pop()


def select_query(package: str, base: str, targets: tuple[str, ...] | list[str]) -> str:
    """aptly's query for `package` at the CI version `base`, every target's (or the version
    itself without targets)."""
    if not targets:
        return f"{package} (= {base})"
    return " | ".join(f"{package} (= {version(base, t)})" for t in targets)


def merged(per_target: dict[str, list[dict]]) -> list[dict]:
    """A distribution's index across its components ({target: that component's stanzas}): the
    versions of each package that every target's component lists, by their CI version (the
    first target's stanza, its Version the CI version's). A commit missing for one target is
    not in it: it cannot be promoted, and its publish does not verify."""
    found: dict[tuple[str, str], dict[str, dict]] = {}
    for target, stanzas in per_target.items():
        for stanza in stanzas:
            base, of = base_of(stanza["Version"], (target,))
            if of == target:
                found.setdefault((stanza["Package"], base), {})[target] = stanza
    first = next(iter(per_target), None)
    return [
        {**stanzas[first], "Version": base}
        for (_, base), stanzas in found.items()
        if len(stanzas) == len(per_target)
    ]


def layout_problem(dist: str, sources: list[dict], releases: tuple[str, ...], component: str):
    """What is wrong when a published distribution's components are not what its project's
    targets ask for (targets added or changed after it was first published); None if nothing.
    Conveyor never re-publishes by itself: hosts read the components by name."""
    have = sorted(s.get("Component", "") for s in sources)
    want = sorted(releases or (component,))
    if have == want:
        return None
    return (
        f"{dist} is published with the component(s) {', '.join(have)}, but its project's "
        f"targets ask for {', '.join(want)}: publish it anew by hand (aptly publish drop "
        f"{dist}, then make run or python -m ops start publishes it empty; its history stays, "
        "its hosts need their apt line for the new components), or set targets back"
    )
