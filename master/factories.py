"""Build factories: what a CI build and a publish build do, step by step."""

from buildbot.plugins import steps
from buildbot.plugins import util

from master.settings import Project
from master.settings import Settings
from steps import debian
from steps import python
from steps import repository as repo_steps

VENV = "../venv"
REPORTS = "../reports"


def test_steps(settings: Settings, project: Project, f: util.BuildFactory,
               checkout: steps.Git) -> None:
    """checkout → virtualenv → install → tests → coverage (+ its HTML report): what a push and a
    pull request have in common."""
    where = util.Interpolate("%(prop:buildername)s/%(prop:buildnumber)s")
    f.addStep(checkout)
    f.addStep(python.CreateVirtualenv(python=project.python, venv=VENV, haltOnFailure=True))
    f.addStep(python.InstallRequirements(requirements=project.requirements, venv=VENV,
                                         haltOnFailure=True))
    f.addStep(python.RunTests(runner=project.test_runner, args=project.test_args, venv=VENV,
                              junit_xml=f"{REPORTS}/junit.xml"))
    f.addStep(python.Coverage(threshold=project.coverage_threshold, below=project.coverage_below,
                              venv=VENV, html_dir=f"{REPORTS}/htmlcov"))
    f.addStep(steps.DirectoryUpload(
        name="coverage report",
        workersrc=f"{REPORTS}/htmlcov",
        masterdest=util.Interpolate(f"{settings.artifacts_dir}/%(kw:where)s/coverage",
                                    where=where),
        url=util.Interpolate(f"{settings.artifacts_url}%(kw:where)s/coverage/index.html",
                             where=where),
        urlText="coverage report",
        alwaysRun=True,
        doStepIf=lambda step: step.getProperty("coverage_percent") is not None,
        hideStepIf=lambda results, step: step.getProperty("coverage_percent") is None,
    ))


def ci_factory(settings: Settings, project: Project) -> util.BuildFactory:
    """tests (see test_steps) → version → deb → upload → publish into `upload_to`."""
    f = util.BuildFactory()
    # The worker clones the configured URL, never a URL taken from the webhook's payload.
    test_steps(settings, project, f, steps.Git(
        repourl=project.clone_url, branch=project.branch, mode="full", method="fresh",
        haltOnFailure=True))
    f.addStep(debian.StampVersion(haltOnFailure=True))
    f.addStep(debian.BuildDebianPackage(packages=project.packages))
    f.addStep(debian.UploadPackages(artifacts_dir=str(settings.artifacts_dir),
                                    artifacts_url=settings.artifacts_url, haltOnFailure=True))
    f.addStep(steps.Trigger(
        name=f"publish to {project.upload_to}",
        schedulerNames=["publish"],
        waitForFinish=True,
        haltOnFailure=True,
        set_properties={
            "project": project.name,
            "distribution": project.upload_to,
            "debs": util.Property("debs"),
            "package_version": util.Property("package_version"),
            "artifacts_path": util.Property("artifacts_path"),
        },
    ))
    return f


def publish_factory(settings: Settings) -> util.BuildFactory:
    """On the repository's worker: fetch → add → snapshot → publish switch (signed) → verify."""
    r = settings.repository
    aptly = {"aptly_config": str(r.aptly_config), "gnupg_home": str(r.gnupg_home),
             "distribution": util.Property("distribution")}
    f = util.BuildFactory()
    f.addStep(steps.RemoveDirectory(dir="incoming", name="clean incoming", hideStepIf=True))
    f.addStep(repo_steps.FetchPackages(artifacts_dir=str(settings.artifacts_dir)))
    f.addStep(repo_steps.AddToRepository(**aptly))
    f.addStep(repo_steps.CreateSnapshot(**aptly))
    f.addStep(repo_steps.PublishSwitch(signing_key=r.signing_key(), **aptly))
    f.addStep(repo_steps.VerifyPublished(repo_url=r.url, component=r.component,
                                         architectures=r.architectures,
                                         distribution=util.Property("distribution")))
    return f
