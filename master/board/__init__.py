"""The release board: a page inside Buildbot's web UI ("Releases" in its menu), served by a
Flask app through the buildbot-wsgi-dashboards plugin, as python/buildmaster-config's release
dashboard is. What it shows is computed by conveyor/board.py; master/board/source.py reads
Buildbot's data API and the repository for it; master/board/app.py is the Flask app.
"""

from __future__ import annotations

from conveyor.settings import Settings

NAME = "releases"


def dashboards(settings: Settings) -> list[dict]:
    """The `wsgi_dashboards` plugin's configuration (www["plugins"]["wsgi_dashboards"])."""
    from master.board.app import make_app  # Flask is imported only when the board is wired

    return [
        {
            "name": NAME,
            "caption": "Releases",
            "app": make_app(settings),
            "order": 1,
            "icon": "rocket",
        }
    ]
