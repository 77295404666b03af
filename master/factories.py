"""Build factories: what CI, pull-request, publish, promote and rollback builds do, step by step."""

from buildbot.plugins import steps
from buildbot.plugins import util

from conveyor import buildprops
from conveyor.settings import Project
from conveyor.settings import Settings
from steps import beside
from steps import checkout
from steps import debian
from steps import install
from steps import lint
from steps import package
from steps import python

VENV = "../venv"
REPORTS = "../reports"


def sandbox(target: str = "", network: bool = False) -> list:
    """The argv prefix of a command that runs the project's own code (pip install, tests,
    coverage's report, the source package): the worker's sandbox (worker/bin/conveyor-sandbox),
    an allow-list (the read-only system, the builder's own directory and cache, private /tmp),
    no network but a loopback of its own; with `network`, the package indexes are reachable (to
    install dependencies); with `target`, the system is that release's (its Python).
    debian/rules runs in a throwaway chroot (worker/bin/conveyor-chroot-build)."""
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


def test_steps(
    settings: Settings, project: Project, f: util.BuildFactory, clone, targets=None, with_lint=True
) -> None:
    """checkout → virtualenv → install → tests → coverage (+ its HTML report): what a push and a
    pull request have in common. A project with target releases gets the four once per release
    of `targets` (default: all of them, one after another), each in that release's system
    (`virtualenv-trixie` …); lint (`with_lint`) and the coverage report are the first
    release's."""
    f.addStep(clone)
    targets = targets or project.targets or ("",)
    for target in targets:
        _python_steps(project, f, target)
    venv, _ = _places(targets[0])
    if project.lint and with_lint:
        f.addStep(
            lint.Lint(
                command=list(project.lint),
                below=project.lint_below,
                venv=venv,
                sandbox=sandbox(targets[0]),
            )
        )
    f.addStep(_coverage_report(settings, targets[0]))


def _coverage_report(settings: Settings, target: str):
    """The HTML coverage report of `target`'s tests, uploaded to the artifact store and linked."""
    where = util.Interpolate("%(prop:buildername)s/%(prop:buildnumber)s")
    _, reports = _places(target)
    return steps.DirectoryUpload(
        name="coverage report",
        workersrc=f"{reports}/htmlcov",
        masterdest=util.Interpolate(f"{settings.artifacts_dir}/%(kw:where)s/coverage", where=where),
        url=util.Interpolate(
            f"{settings.artifacts_url}%(kw:where)s/coverage/index.html", where=where
        ),
        urlText="coverage report" + (f" ({target})" if target else ""),
        alwaysRun=True,
        doStepIf=lambda step: step.getProperty(buildprops.COVERAGE_PERCENT) is not None,
        hideStepIf=lambda results, step: step.getProperty(buildprops.COVERAGE_PERCENT) is None,
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
    """start the package builds (package_factory, beside this one) and the tests of the target
    releases after the first (tests_factory) → tests of the first release (see test_steps) →
    wait for the other releases' tests → wait for the packages → publish into `upload_to`: only
    when all succeeded (steps/beside.py)."""
    f = util.BuildFactory()
    f.addStep(package.StartPackage(schedulers=[b for _, b in project.package_builders]))
    if project.tests_builders:
        f.addStep(beside.StartTests(schedulers=[b for _, b in project.tests_builders]))
    test_steps(settings, project, f, _checkout(project), targets=project.targets[:1])
    if project.tests_builders:
        f.addStep(beside.AwaitTests())
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
                buildprops.ARTIFACT_PATHS: util.Property(buildprops.ARTIFACT_PATHS),
                "commit": util.Property("got_revision"),
                # a force-push back to a commit published before publishes it again (pushes.py)
                buildprops.PUSH_FORCED: util.Property(buildprops.PUSH_FORCED, default=False),
                "who": _authors,
            },
        )
    )
    return f


def tests_factory(settings: Settings, project: Project, target: str) -> util.BuildFactory:
    """checkout → virtualenv → install → tests → coverage (+ its HTML report) of one target
    release after the first, beside the CI build, which takes over its figures (steps/beside.py
    AwaitTests)."""
    f = util.BuildFactory()
    test_steps(settings, project, f, _checkout(project), targets=(target,), with_lint=False)
    return f


def package_factory(settings: Settings, project: Project, target: str = "") -> util.BuildFactory:
    """checkout → version (the CI build's) → deb → upload → install check: a CI build's package
    for one target release ('': the worker's own), built while its tests run and beside the
    other releases' package builds (steps/package.py)."""
    f = util.BuildFactory()
    f.addStep(_checkout(project, changelog=debian.CHANGELOG))
    f.addStep(debian.StampVersion(haltOnFailure=True))
    f.addStep(
        debian.BuildDebianPackage(packages=project.packages, sandbox=sandbox(), target=target)
    )
    f.addStep(
        debian.UploadPackages(
            artifacts_dir=str(settings.artifacts_dir),
            artifacts_url=settings.artifacts_url,
            haltOnFailure=True,
        )
    )
    if project.install_check:
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
