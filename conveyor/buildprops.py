"""The build properties that cross steps, builds, reporters and the board: each name once,
with who sets it and who reads it. Code uses these constants, never the string, so that a
rename is one edit here and a reader can not silently read a name nobody sets any more
(tests/unit/test_buildprops.py holds every file to this table). Buildbot's own properties
(got_revision, buildnumber, owner …) and a step's private ones are not listed.

Each: set by → read by.

- PACKAGE_VERSION: steps/debian.py (StampVersion), steps/promotion.py (the version promoted),
  master/factories.py (to publish) → steps/package.py, steps/repository.py, steps/indexes.py,
  steps/provenance.py, steps/approvals.py (the version requested), master/reporters/mail.py
  and admins.py, conveyor/board.py, ops/__main__.py
- SOURCE_PACKAGE: steps/debian.py → steps/debian.py, steps/package.py (handed over)
- COMMIT_TIME: steps/checkout.py, steps/debian.py → steps/debian.py, steps/package.py
- CI_NUMBER: steps/package.py (the CI build's number, to its package build) → steps/debian.py
- DEBS: steps/debian.py, master/factories.py (to publish) → steps/package.py, steps/install.py,
  steps/repository.py, steps/indexes.py, steps/provenance.py
- ARTIFACTS_PATH: steps/debian.py (UploadPackages: a package build's `<builder>/<number>` in
  the artifact store) → steps/package.py
- ARTIFACT_PATHS: steps/package.py (AwaitPackage: {each .deb and .buildinfo: the
  ARTIFACTS_PATH of the package build that made it}), master/factories.py (to publish) →
  steps/repository.py, steps/provenance.py
- BUILDINFOS: steps/debian.py (the build's .buildinfo of the release built) → steps/debian.py
  (UploadPackages), steps/package.py, steps/provenance.py (through the data API)
- CHROOT_BASES: steps/debian.py ({base file name: its sha256}, from the trusted side's digest)
  → steps/provenance.py (through the data API)
- PROVENANCE: steps/provenance.py ("signed" by a publish's attest, "verified" by a promotion's
  check) → steps/repository.py (into the history entry, which the board shows)
- PACKAGE_REQUESTS: steps/package.py (StartPackage, through StartBeside: the build request
  of each target release's package build), steps/beside.py (StartTests hands them to the
  tests builds) → steps/beside.py (AwaitTests), steps/failfast.py
- TESTS_REQUESTS: steps/beside.py (StartBeside, for StartTests: the build request of each
  later target release's tests build) → steps/beside.py (AwaitTests), steps/failfast.py
- PACKAGE_FAILED_FIRST: steps/failfast.py, steps/beside.py (AwaitTests) → steps/package.py
- TESTS_FAILED_FIRST: steps/failfast.py → steps/beside.py (AwaitTests: a later release's tests
  build failed while the CI build's own tests ran, and stopped them)
- BESIDE_FAILED_STEP: steps/beside.py (AwaitBeside: the failing step of a package or tests
  build beside the CI build) → master/reporters/facts.py
- COVERAGE_PERCENT: steps/python.py, steps/beside.py (AwaitTests) → master/factories.py,
  master/reporters/facts.py and github.py, conveyor/board.py
- COVERAGE_THRESHOLD: steps/python.py → master/reporters/facts.py, conveyor/board.py
- TESTS_PASSED, TESTS_FAILED: steps/figures.py (for the tests steps and AwaitTests) →
  master/reporters/facts.py and github.py, conveyor/board.py
- TESTS_FAILED_NAMES: steps/figures.py → master/reporters/facts.py
- BY_TARGET: steps/figures.py, steps/beside.py (AwaitTests: each target release's tests and
  coverage: {release: {passed, failed, skipped, coverage}}; the figures above are their sums
  and their lowest coverage) → steps/figures.py, master/reporters/facts.py and github.py,
  conveyor/board.py
- TESTS_FAILURES: steps/figures.py → steps/python.py, steps/beside.py (AwaitTests: earlier
  releases' failures), master/reporters/facts.py, conveyor/board.py
- LINT_PROBLEMS, LINT_FIRST: steps/lint.py → master/reporters/facts.py
- PUSH_FORCED: master/pushes.py (a change property), master/factories.py (to publish) →
  steps/indexes.py
- ALREADY_PUBLISHED: steps/indexes.py (SkipPublishedCommit) → master/releases.py
- PREVIOUS_VERSION, RELEASE_COMMITS: steps/promotion.py → master/reporters/mail.py
- PROMOTION_NOOP: steps/promotion.py → master/reporters/mail.py, master/releases.py
- MAIL_FAILED: master/reporters/mail.py → conveyor/board.py
- AWAITING_APPROVAL: steps/approvals.py (a request recorded, or an approval short of the
  count: the promotion's steps do not run) → master/releases.py
- APPROVED_BY: steps/approvals.py (the approval that completes the count) →
  steps/repository.py (into the history entry), master/reporters/mail.py
- APPROVAL_REQUEST: steps/approvals.py (the same) → master/releases.py, steps/repository.py
- PENDING_REQUEST: steps/approvals.py (the request that waits, as the approvals module's
  as_json) → master/reporters/mail.py (the mail that asks for approvals)
"""

PACKAGE_VERSION = "package_version"
SOURCE_PACKAGE = "source_package"
COMMIT_TIME = "commit_time"
CI_NUMBER = "ci_number"
DEBS = "debs"
ARTIFACTS_PATH = "artifacts_path"
ARTIFACT_PATHS = "artifact_paths"
CHROOT_BASES = "chroot_bases"
BUILDINFOS = "buildinfos"
PROVENANCE = "provenance_check"
PACKAGE_REQUESTS = "package_requests"
TESTS_REQUESTS = "tests_requests"
PACKAGE_FAILED_FIRST = "package_failed_first"
TESTS_FAILED_FIRST = "tests_failed_first"
BESIDE_FAILED_STEP = "beside_failed_step"
COVERAGE_PERCENT = "coverage_percent"
COVERAGE_THRESHOLD = "coverage_threshold"
TESTS_PASSED = "tests_passed"
TESTS_FAILED = "tests_failed"
TESTS_FAILED_NAMES = "tests_failed_names"
TESTS_FAILURES = "tests_failures"
BY_TARGET = "by_target"
LINT_PROBLEMS = "lint_problems"
LINT_FIRST = "lint_first"
PUSH_FORCED = "push_forced"
ALREADY_PUBLISHED = "already_published"
PREVIOUS_VERSION = "previous_version"
PROMOTION_NOOP = "promotion_noop"
RELEASE_COMMITS = "release_commits"
MAIL_FAILED = "mail_failed"
AWAITING_APPROVAL = "awaiting_approval"
APPROVED_BY = "request_approvers"
APPROVAL_REQUEST = "approval_request"
PENDING_REQUEST = "pending_request"
