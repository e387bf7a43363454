from buildkit.launcher import main

main()
