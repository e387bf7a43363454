"""`imgbuild init`: read an existing Rails app and write the imgbuild.yaml that builds and boots it.

`detect` reads the app (`lockfile` for the gems, `ruby_version` for the Ruby, `command` for
Procfile and the server, `packages` for the gem -> Debian packages table) into a frozen
`Detection`; `render` turns it into YAML whose comments explain every value; `write.init_app`
runs the two and writes the file atomically, never over an existing one without `force`, and
only after imgbuild's own config loader has accepted it. Nothing here builds or touches Docker.
docs/init.md describes the behaviour and shows the table.
"""
