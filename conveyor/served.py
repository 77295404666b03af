"""Where the repository serves what the board, the CLI and the master read over HTTP, as apt
and a browser read it: each distribution's `Packages` index (one per component: the
repository's one, or one per target release, conveyor/targets.py), its history and its freeze.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from conveyor import debformats
from conveyor import targets
from conveyor.settings import Settings


def index_url(settings: Settings, dist: str, component: str | None = None) -> str:
    repo = settings.repository
    arch = next((a for a in repo.architectures if a != "all"), repo.architectures[0])
    return f"{repo.url}dists/{dist}/{component or repo.component}/binary-{arch}/Packages"


def index_components(settings: Settings, dist: str) -> dict[str, str]:
    """{component: its index's URL}: one per target release, or the repository's one."""
    return {c: index_url(settings, dist, c) for c in settings.targets_of(dist) or (None,)}


def parse_index(settings: Settings, dist: str, texts: dict) -> list[dict] | None:
    """A distribution's stanzas from its components' index texts (index_components' keys;
    None when one is missing); with target releases, the versions every release has, by their
    CI version (conveyor/targets.py)."""
    if any(text is None for text in texts.values()):
        return None
    parsed = {c: debformats.parse_packages_stanzas(text) for c, text in texts.items()}
    return targets.merged(parsed) if settings.targets_of(dist) else parsed[None]


def read_index(settings: Settings, dist: str, text_of) -> list[dict] | None:
    """parse_index of what `text_of(url)` reads (None: not there)."""
    urls = index_components(settings, dist)
    return parse_index(settings, dist, {c: text_of(url) for c, url in urls.items()})


def history_url(settings: Settings, dist: str) -> str:
    return f"{settings.repository.url}history/{dist}.jsonl"


def requests_url(settings: Settings, dist: str) -> str:
    """Where a distribution's promotion requests and approvals are served
    (conveyor.approvals.parse_log)."""
    return f"{settings.repository.url}history/{dist}.requests.jsonl"


def freeze_url(settings: Settings, dist: str) -> str:
    """Where a distribution's freeze (conveyor.release.parse_freeze) is served."""
    return f"{settings.repository.url}history/{dist}.freeze.json"


def fetch(url: str, raw: bool = False):
    """A file the repository serves, as text (bytes: `raw`); None when it is not there (404).
    Other failures raise urllib's errors (OSError)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
            return data if raw else data.decode()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
