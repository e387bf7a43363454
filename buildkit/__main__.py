from buildkit.server.launcher import main

main()
