"""`python -m buildkit.server`: the resident server's process.

An entry point (docs/architecture.md): it may import the CLI, which the server package below it
never does; the daemon gets the CLI's `main` as the command its workers run.
"""

import sys

from buildkit.cli.app import main as cli_main
from buildkit.server.daemon import main

sys.exit(main(cli_main))
