"""Conveyor's pure core: what an installation is and what its releases are, with no Buildbot
and no Twisted inside (a unit test reads the imports to keep it so).

- `settings`: pipeline.toml + secrets -> typed, checked settings
- `users`: the web users file
- `grammar`: the names Conveyor accepts (packages, distributions, versions, commits, roles …)
- `release`: the release model: Debian versions (python-debian), changelog stamps, the
  `Packages` index, the promotion path's rules, history and rollback targets
- `results`: Buildbot's result names and how figures are written
- `mail`: what a failure/fix mail and a release mail say (facts -> subject, plain text, HTML)

Everything else (master/, steps/, ops/) may import this package; it imports nothing of theirs.
"""
