"""Build factories of the repository's builders: publish, promote, approve, rollback and
freeze, each on the repository's worker under its lock (master/builders.py). The builds that
run a project's code are in master/factories.py."""

from buildbot.plugins import util
from buildbot.process.results import SKIPPED

from conveyor import buildprops
from conveyor.settings import Settings
from steps import approvals
from steps import indexes
from steps import promotion
from steps import provenance
from steps import repository as repo_steps


def _components(settings: Settings) -> dict[str, tuple[str, ...]]:
    """{distribution: its target releases}: those published one component per release."""
    return {d: settings.targets_of(d) for d in settings.distributions if settings.targets_of(d)}


def _aptly(settings: Settings, distribution) -> dict:
    r = settings.repository
    return {
        "aptly_config": str(r.aptly_config),
        "gnupg_home": str(r.gnupg_home),
        "distribution": distribution,
        "components": _components(settings),
    }


def _index(settings: Settings) -> dict:
    """What a step that reads a distribution's index over HTTP needs (steps/indexes.py)."""
    r = settings.repository
    return {
        "repo_url": r.url,
        "component": r.component,
        "architectures": r.architectures,
        "components": _components(settings),
    }


def _publish_steps(
    settings: Settings, f: util.BuildFactory, distribution, action: str, **when
) -> None:
    """switch (signed) → verify over HTTP → history: the end of every repository change; when
    the verification or the history fails after the switch, the previous state is put back."""
    r = settings.repository
    f.addStep(
        repo_steps.PublishSwitch(signing=r.signing_args(), **_aptly(settings, distribution), **when)
    )
    f.addStep(indexes.VerifyPublished(distribution=distribution, **_index(settings), **when))
    f.addStep(
        repo_steps.RecordHistory(
            history_dir=str(settings.history_dir), action=action, distribution=distribution, **when
        )
    )
    # a switched-to state that failed its check goes: the history knows what is served
    f.addStep(
        repo_steps.RestorePublished(signing=r.signing_args(), **_aptly(settings, distribution))
    )
    f.addStep(repo_steps.DropUnpublished(**_aptly(settings, distribution)))


def publish_factory(settings: Settings) -> util.BuildFactory:
    """On the repository's worker: (a commit already published: nothing) → fetch → the next
    snapshot (current state + the packages, one step) → publish."""
    dist = util.Property("distribution")
    f = util.BuildFactory()
    new = {"doStepIf": lambda step: not step.getProperty(buildprops.ALREADY_PUBLISHED)}
    f.addStep(indexes.SkipPublishedCommit(distribution=dist, **_index(settings)))
    f.addStep(repo_steps.FetchPackages(artifacts_dir=str(settings.artifacts_dir), **new))
    r = settings.repository
    # each .deb's provenance, signed here with the repository's key: none, nothing published
    f.addStep(
        provenance.Attest(
            artifacts_dir=str(settings.artifacts_dir),
            projects={
                p.name: {
                    "clone_url": p.clone_url,
                    "branch": p.branch,
                    "targets": p.targets,
                    "packages": p.packages,
                }
                for p in settings.projects
            },
            web_url=settings.web_url,
            www_root=str(r.www_root),
            key=r.signing_key(),
            passphrase_file=str(r.passphrase_file) if r.passphrase_file else None,
            gnupg_home=str(r.gnupg_home),
            **new,
        )
    )
    f.addStep(repo_steps.NextSnapshot(**_aptly(settings, dist), **new))
    _publish_steps(settings, f, dist, "publish", **new)
    return f


def _changes(step) -> bool:
    """Does the promotion change something now (not a no-op, not a request that waits)?"""
    return not (
        step.getProperty(buildprops.PROMOTION_NOOP)
        or step.getProperty(buildprops.AWAITING_APPROVAL)
    )


def _promotion_steps(settings: Settings, f: util.BuildFactory, when=None) -> None:
    """check the rules → the target as the request saw it (master/basis.py)? → provenance
    (into a path's end) → the request, when the target needs approvals (steps/approvals.py)
    → select the version from the source's published snapshot → merge into the target's →
    publish → verify → history → the commits it brings (into the end of a path, for the
    release mail that master/reporters/mail.py sends). `when`: a condition on all of them."""
    target = util.Property("to_dist")
    paths = {
        package: list(project.path) for project in settings.projects for package in project.packages
    }
    ends = {project.path[-1] for project in settings.projects}
    gate = when or (lambda step: True)

    def changes(step) -> bool:
        return gate(step) and _changes(step)

    def into_production(step) -> bool:
        return changes(step) and step.getProperty("to_dist") in ends

    def needs_request(step) -> bool:
        return (
            changes(step)
            and bool(settings.approvals.of(step.getProperty("to_dist")))
            and not step.getProperty(buildprops.APPROVAL_REQUEST)
        )

    skipped = {"hideStepIf": lambda results, step: results == SKIPPED}
    hidden = skipped if when else {}  # an approval short of the count shows its own step only
    f.addStep(promotion.ResolvePromotion(paths=paths, doStepIf=gate, **hidden, **_index(settings)))
    f.addStep(
        repo_steps.CurrentSnapshot(
            into="source_snapshot",
            name="source",
            doStepIf=changes,
            **hidden,
            **_aptly(settings, util.Property("from_dist")),
        )
    )
    f.addStep(repo_steps.CurrentSnapshot(doStepIf=changes, **hidden, **_aptly(settings, target)))
    f.addStep(promotion.CheckBasis(distribution=target, doStepIf=changes, **hidden))
    # into a path's last distribution: only packages whose signed provenance proves out
    f.addStep(provenance.CheckProvenance(settings=settings, doStepIf=into_production, **skipped))
    f.addStep(
        approvals.RequestApproval(
            needed=dict(settings.approvals.needed),
            expire_hours=settings.approvals.expire_after_hours,
            history_dir=str(settings.history_dir),
            distribution=target,
            doStepIf=needs_request,
            **skipped,
        )
    )
    f.addStep(repo_steps.SelectVersion(doStepIf=changes, **hidden, **_aptly(settings, target)))
    f.addStep(repo_steps.MergeSnapshot(doStepIf=changes, **hidden, **_aptly(settings, target)))
    _publish_steps(settings, f, target, "promote", doStepIf=changes, **hidden)
    f.addStep(
        promotion.CommitsBetween(
            clone_urls={
                p: project.clone_url for project in settings.projects for p in project.packages
            },
            doStepIf=into_production,
            **skipped,
        )
    )


def promote_factory(settings: Settings) -> util.BuildFactory:
    """The promotion's steps (_promotion_steps); into a distribution that needs approvals,
    the build records the request and ends (steps/approvals.py)."""
    f = util.BuildFactory()
    _promotion_steps(settings, f)
    return f


def approve_factory(settings: Settings) -> util.BuildFactory:
    """record the approval → when it completes the count: the promotion's steps, for what the
    request recorded → close the request (promoted, or refused and why)."""
    f = util.BuildFactory()
    dist = util.Property("distribution")
    f.addStep(approvals.RecordApproval(history_dir=str(settings.history_dir), distribution=dist))

    def approved(step) -> bool:
        return bool(step.getProperty(buildprops.APPROVAL_REQUEST))

    _promotion_steps(settings, f, when=approved)
    f.addStep(
        approvals.CloseRequest(
            history_dir=str(settings.history_dir),
            distribution=dist,
            doStepIf=approved,
            hideStepIf=lambda results, step: results == SKIPPED,
        )
    )
    return f


def rollback_factory(settings: Settings) -> util.BuildFactory:
    """current state → as the request saw it? → the state to return to (by the history) →
    publish it → verify → history."""
    dist = util.Property("distribution")
    f = util.BuildFactory()
    f.addStep(repo_steps.CurrentSnapshot(**_aptly(settings, dist)))
    f.addStep(promotion.CheckBasis(distribution=dist))
    f.addStep(
        promotion.ResolveRollback(
            history_dir=str(settings.history_dir),
            keep_states=settings.retention.snapshots_keep_states,
            aptly_config=str(settings.repository.aptly_config),
            gnupg_home=str(settings.repository.gnupg_home),
            distribution=dist,
        )
    )
    _publish_steps(settings, f, dist, "rollback")
    return f


def freeze_factory(settings: Settings) -> util.BuildFactory:
    """Write the distribution's freeze (or its end) beside its history."""
    f = util.BuildFactory()
    f.addStep(
        promotion.SetFreeze(
            history_dir=str(settings.history_dir), distribution=util.Property("distribution")
        )
    )
    return f
