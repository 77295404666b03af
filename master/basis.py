"""Every promote and rollback names its basis: what its requester saw, recorded when asked.

When the `promote` or `rollback` button takes a request, it reads what the repository serves at
that moment (over HTTP, as apt and the board do) and records it with the request:
- `basis_snapshot` and `basis_state`: the state the distribution to change is in (the last
  entry of its history);
- for a promotion with no version named: `version`, the newest version the source serves now
  (not one whose publish is still running when the build starts);
- for a rollback with no state named: `state`, the state before the current one. The empty
  state a distribution starts with is never that: a rollback to it must name it.
A promotion into a frozen distribution is refused here already (and again by the build).

The build checks the basis under the repository lock (steps/promotion.py CheckBasis): if the
distribution has moved since (another change ran first, as with two identical rollbacks, or a
rebuild of an old change), nothing is changed and the build says why. A request the rules
refuse already here gets HTTP 400 with {field: message}.
"""

from __future__ import annotations

import treq
from twisted.internet import defer

from buildbot.schedulers.forcesched import CollectedValidationError

from conveyor import debformats
from conveyor import release
from conveyor import served
from conveyor.settings import Settings

SOURCE = "Conveyor, at request time"


@defer.inlineCallbacks
def fetch(url: str):
    """The text the repository serves at url; "" when it has no such file."""
    try:
        response = yield treq.get(url, timeout=30)
        body = yield treq.text_content(response, encoding="utf-8")
    except Exception as exc:  # connection refused, timeout…
        raise release.ReleaseError(f"the repository is not reachable ({url}: {exc})") from None
    if response.code == 404:
        return ""
    if response.code != 200:
        raise release.ReleaseError(f"the repository answered {response.code} for {url}")
    return body


@defer.inlineCallbacks
def current_state(settings: Settings, dist: str):
    """(the history of dist, its last entry: the state it serves now)."""
    history = release.parse_history((yield fetch(served.history_url(settings, dist))))
    if not history:
        raise release.ReleaseError(f"{dist} has no history: it is not set up")
    return history, history[-1]


@defer.inlineCallbacks
def promotion_basis(settings: Settings, properties) -> dict:
    package, source = properties.getProperty("package"), properties.getProperty("from_dist")
    target = properties.getProperty("to_dist")
    project = settings.project_of_package(package)
    if not target and project is not None:
        target = release.next_step(project.path, source) or ""
    refusal = release.freeze_refusal(
        target, release.parse_freeze((yield fetch(served.freeze_url(settings, target))))
    )
    if refusal:
        raise release.ReleaseError(refusal)
    _, now = yield current_state(settings, target)
    basis = {"basis_snapshot": now["snapshot"], "basis_state": now["n"]}
    if not (properties.getProperty("version") or "").strip():
        texts = {}
        for component, url in served.index_components(settings, source).items():
            texts[component] = yield fetch(url)
        stanzas = served.parse_index(settings, source, texts) or []
        newest = debformats.newest({s["Version"] for s in stanzas if s["Package"] == package})
        if newest is None:
            raise release.ReleaseError(f"{source} serves no {package}: nothing to promote")
        basis["version"] = newest
    return basis


@defer.inlineCallbacks
def rollback_basis(settings: Settings, properties) -> dict:
    dist = properties.getProperty("distribution")
    history, now = yield current_state(settings, dist)
    target = release.rollback_target(
        history, now["snapshot"], (properties.getProperty("state") or "").strip()
    )
    return {"basis_snapshot": now["snapshot"], "basis_state": now["n"], "state": str(target["n"])}


class RecordsBasis:
    """For a force scheduler (before it in the bases; its first argument: the settings): adds
    the basis (`find_basis`: one of the functions above) to every request's properties, in the
    scheduler's documented addBuildsetForSourceStampsWithDefaults; a request that cannot have
    one is refused (HTTP 400)."""

    find_basis = None  # staticmethod: (settings, properties) -> Deferred of {property: value}

    def __init__(self, settings: Settings, **kwargs):
        self.conveyor = settings
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def addBuildsetForSourceStampsWithDefaults(
        self,
        reason,
        sourcestamps=None,
        waited_for=False,
        properties=None,
        builderNames=None,
        priority=None,
        **kw,
    ):
        try:
            found = yield self.find_basis(self.conveyor, properties)
        except release.ReleaseError as exc:
            raise CollectedValidationError({"basis": f"refused: {exc}"}) from None
        for name, value in found.items():
            properties.setProperty(name, value, SOURCE)
        result = yield super().addBuildsetForSourceStampsWithDefaults(
            reason,
            sourcestamps=sourcestamps,
            waited_for=waited_for,
            properties=properties,
            builderNames=builderNames,
            priority=priority,
            **kw,
        )
        return result
