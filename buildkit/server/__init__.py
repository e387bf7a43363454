"""`imgbuild server`: an optional resident process that runs commands without starting Python.

- `launcher`: the `imgbuild` console entry: hands the command to a running server, else runs
  the CLI in-process (an entry point: it may import the CLI);
- `__main__`: `python -m buildkit.server`, which hands the CLI's main to the daemon;
- `daemon`: the accept loop and its forked workers;
- `protocol`: the socket, its fingerprint and the messages;
- `watcher`: inotify on the trees workers walked; a worker gets its word as a
  `source.treewatch.TreeWatch`, so hashing never imports the server.
"""
