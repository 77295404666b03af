"""``python -m snowbird`` runs the server, like the ``snowbird`` command."""

import sys

from snowbird.server import main

if __name__ == "__main__":
    sys.exit(main())
