"""`python -m buildkit.server`: the resident server's process (buildkit.server.daemon)."""

from buildkit.server.daemon import main

main()
