"""Build factories: what CI, pull-request, publish, promote and rollback builds do, step by step."""

from buildbot.plugins import steps
from buildbot.plugins import util
from buildbot.process.results import SKIPPED

from conveyor import buildprops
from conveyor.settings import Project
from conveyor.settings import Settings
from steps import checkout
from steps import debian
from steps import indexes
from steps import install
from steps import lint
from steps import package
from steps import promotion
from steps import provenance
from steps import python
from steps import repository as repo_steps

VENV = "../venv"
REPORTS = "../reports"


def sandbox(target: str = "", network: bool = False) -> list:
    """The argv prefix of a command that runs the project's own code (pip install, tests,
    coverage's report, the source package): the worker's sandbox (worker/bin/conveyor-sandbox),
    an allow-list (the read-only system, the builder's own directory and cache, private /tmp),
    no network but a loopback of its own; with `network`, the package indexes are reachable (to
    install dependencies); with `target`, the system is that release's (its Python).
    debian/rules runs in a throwaway chroot (worker/bin/conveyor-sbuild)."""
    return [
        "conveyor-sandbox",
        *(["--network"] if network else []),
        *(["--release", target] if target else []),
        util.Property("builddir"),
        "--",
    ]


@util.renderer
def _authors(props) -> str:
    """Who a CI build publishes for: the authors of its changes (or who forced it)."""
    build = props.getBuild()
    names = sorted({change.who for change in build.allChanges() if change.who})
    return ", ".join(names) or props.getProperty("owner") or ""


def test_steps(settings: Settings, project: Project, f: util.BuildFactory, clone) -> None:
    """checkout → virtualenv → install → tests → coverage (+ its HTML report): what a push and a
    pull request have in common. A project with target releases gets the four once per release,
    each in that release's system (`virtualenv-trixie` …); lint and the coverage report are the
    first release's."""
    where = util.Interpolate("%(prop:buildername)s/%(prop:buildnumber)s")
    f.addStep(clone)
    targets = project.targets or ("",)
    for target in targets:
        _python_steps(project, f, target)
    venv, reports = _places(targets[0])
    if project.lint:
        f.addStep(
            lint.Lint(
                command=list(project.lint),
                below=project.lint_below,
                venv=venv,
                sandbox=sandbox(targets[0]),
            )
        )
    f.addStep(
        steps.DirectoryUpload(
            name="coverage report",
            workersrc=f"{reports}/htmlcov",
            masterdest=util.Interpolate(
                f"{settings.artifacts_dir}/%(kw:where)s/coverage", where=where
            ),
            url=util.Interpolate(
                f"{settings.artifacts_url}%(kw:where)s/coverage/index.html", where=where
            ),
            urlText="coverage report" + (f" ({targets[0]})" if targets[0] else ""),
            alwaysRun=True,
            doStepIf=lambda step: step.getProperty(buildprops.COVERAGE_PERCENT) is not None,
            hideStepIf=lambda results, step: step.getProperty(buildprops.COVERAGE_PERCENT) is None,
        )
    )


def _places(target: str) -> tuple[str, str]:
    """(virtualenv, reports directory) of a target release's tests, beside the checkout."""
    return (f"{VENV}-{target}", f"{REPORTS}-{target}") if target else (VENV, REPORTS)


def _python_steps(project: Project, f: util.BuildFactory, target: str) -> None:
    """virtualenv → install → tests → coverage, in `target`'s system ('': the worker's)."""
    venv, reports = _places(target)

    def name(step: str) -> dict:
        return {"name": f"{step}-{target}"} if target else {}

    f.addStep(
        python.CreateVirtualenv(
            python=project.python,
            venv=venv,
            installer=project.installer,
            sandbox=sandbox(target) if target else (),
            haltOnFailure=True,
            **name("virtualenv"),
        )
    )
    f.addStep(
        python.InstallRequirements(
            requirements=project.requirements,
            venv=venv,
            installer=project.installer,
            extras=project.extras,
            groups=project.dependency_groups,
            sandbox=sandbox(target, network=True),
            haltOnFailure=True,
            **name("install"),
        )
    )
    f.addStep(
        python.RunTests(
            runner=project.test_runner,
            args=project.test_args,
            venv=venv,
            junit_xml=f"{reports}/junit.xml",
            sandbox=sandbox(target),
            target=target,
            **name("tests"),
        )
    )
    f.addStep(
        python.Coverage(
            threshold=project.coverage_threshold,
            below=project.coverage_below,
            venv=venv,
            html_dir=f"{reports}/htmlcov",
            sandbox=sandbox(target),
            target=target,
            **name("coverage"),
        )
    )


def _checkout(project: Project, **kwargs) -> checkout.Checkout:
    # The worker clones the configured URL, never a URL taken from the webhook's payload.
    return checkout.Checkout(repourl=project.clone_url, branch=project.branch, **kwargs)


def ci_factory(settings: Settings, project: Project) -> util.BuildFactory:
    """start the package build (package_factory, beside this one) → tests (see test_steps) →
    wait for the package → publish into `upload_to`: only when both succeeded."""
    f = util.BuildFactory()
    f.addStep(package.StartPackage(scheduler=project.package_builder))
    test_steps(settings, project, f, _checkout(project))
    f.addStep(package.AwaitPackage(artifacts_url=settings.artifacts_url))
    f.addStep(
        steps.Trigger(
            name=f"publish to {project.upload_to}",
            schedulerNames=["publish"],
            waitForFinish=True,
            haltOnFailure=True,
            set_properties={
                "project": project.name,
                "distribution": project.upload_to,
                buildprops.DEBS: util.Property(buildprops.DEBS),
                buildprops.PACKAGE_VERSION: util.Property(buildprops.PACKAGE_VERSION),
                buildprops.ARTIFACTS_PATH: util.Property(buildprops.ARTIFACTS_PATH),
                "commit": util.Property("got_revision"),
                # a force-push back to a commit published before publishes it again (pushes.py)
                buildprops.PUSH_FORCED: util.Property(buildprops.PUSH_FORCED, default=False),
                "who": _authors,
            },
        )
    )
    return f


def package_factory(settings: Settings, project: Project) -> util.BuildFactory:
    """checkout → version (the CI build's) → deb → upload → install check: a CI build's package,
    built while its tests run (steps/package.py)."""
    f = util.BuildFactory()
    f.addStep(_checkout(project, changelog=debian.CHANGELOG))
    f.addStep(debian.StampVersion(haltOnFailure=True))
    # one build per target release, one after another (conveyor/targets.py); none: the worker's
    for i, target in enumerate(project.targets or ("",)):
        f.addStep(
            debian.BuildDebianPackage(
                packages=project.packages, sandbox=sandbox(), target=target, first=i == 0
            )
        )
    f.addStep(
        debian.UploadPackages(
            artifacts_dir=str(settings.artifacts_dir),
            artifacts_url=settings.artifacts_url,
            haltOnFailure=True,
        )
    )
    if project.install_check:
        for target in project.targets or ("",):
            f.addStep(install_check(settings, project, target))
    return f


def install_check(settings: Settings, project: Project, target: str = "") -> install.InstallCheck:
    """Install, upgrade (from what the next distribution holds) and purge the built packages
    in a throwaway root on the build worker, then the smoke command: nothing that fails it is
    published. The uploaded .debs stay linked from the build, to try by hand."""
    path = list(project.path)
    after = path.index(project.upload_to) + 1
    r = settings.repository
    return install.InstallCheck(
        repo_url=r.url,
        key_url=r.public_key_url,
        component=r.component,
        deps=project.upload_to,
        upgrade_from=path[after] if after < len(path) else None,
        smoke=project.smoke,
        target=target,
    )


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
    return not step.getProperty(buildprops.PROMOTION_NOOP)


def promote_factory(settings: Settings) -> util.BuildFactory:
    """check the rules → the target as the request saw it (master/basis.py)? → select the
    version from the source's published snapshot → merge into the target's → publish →
    verify → history → the commits it brings (into the end of a path, for the release mail
    that master/reporters/mail.py sends)."""
    target = util.Property("to_dist")
    paths = {
        package: list(project.path) for project in settings.projects for package in project.packages
    }
    f = util.BuildFactory()
    f.addStep(promotion.ResolvePromotion(paths=paths, **_index(settings)))
    f.addStep(
        repo_steps.CurrentSnapshot(
            into="source_snapshot",
            name="source",
            doStepIf=_changes,
            **_aptly(settings, util.Property("from_dist")),
        )
    )
    f.addStep(repo_steps.CurrentSnapshot(doStepIf=_changes, **_aptly(settings, target)))
    f.addStep(promotion.CheckBasis(distribution=target, doStepIf=_changes))
    ends = {project.path[-1] for project in settings.projects}

    def into_production(step) -> bool:
        return _changes(step) and step.getProperty("to_dist") in ends

    # into a path's last distribution: only packages whose signed provenance proves out
    f.addStep(
        provenance.CheckProvenance(
            settings=settings,
            doStepIf=into_production,
            hideStepIf=lambda results, step: results == SKIPPED,
        )
    )
    f.addStep(repo_steps.SelectVersion(doStepIf=_changes, **_aptly(settings, target)))
    f.addStep(repo_steps.MergeSnapshot(doStepIf=_changes, **_aptly(settings, target)))
    _publish_steps(settings, f, target, "promote", doStepIf=_changes)
    f.addStep(
        promotion.CommitsBetween(
            clone_urls={
                p: project.clone_url for project in settings.projects for p in project.packages
            },
            doStepIf=into_production,
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
