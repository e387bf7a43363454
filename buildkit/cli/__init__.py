"""The `imgbuild` command line: a thin typer layer over the pipeline, reports, CodeBuild and server.

Commands parse options, call `options.resolve` for the frozen Config and hand it to the layers
below; they hold no build logic. `app` is the typer app with `main` (where errors become messages
and exit codes), the global options and the build commands (ruby, base, app, plan). `options`
holds the options several commands share (-c, --registry, --json, --release-tags) and `resolve`.
Every other command group is one module (`init`, `report`, `codebuild`, `ecr`, `server`) that
exposes `register(app)`: it adds its typer sub-app and, where it has them, top-level commands
(`init`, `report`, `promote`); `app` calls each `register` once, in the order `imgbuild --help`
lists them.
"""
