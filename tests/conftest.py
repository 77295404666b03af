"""What every test needs before it imports anything of Buildbot's."""

import warnings

# compat: twisted_ssl_deprecation (master/compat.py). buildbot.util.ssl star-imports
# twisted.internet.ssl, which touches a name Twisted 26.10 deprecated; once buildbot.test has
# turned warnings into errors, the first test module to import Buildbot's mail reporter would
# fail to import. Imported here, first, with that warning ignored, the suite does not depend on
# the order of its imports.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import buildbot.util.ssl  # noqa: F401
