"""The `imgbuild` command: thin typer wrappers over the pipeline; errors become exit codes here.

Exit codes: 0 ok, 2 usage, 3 config, 4 input, 5 daemon, 6 BuildKit, 7 build, 8 registry, 9 push,
10 size regression, 11 AWS, 12 missing program, 13 server, 14 tests failed, 15 smoke check,
16 service image, 17 not ready, 18 test command, 70 internal bug (or a server
worker lost), 130/143 interrupted.
"""

import contextlib
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from buildkit import log
from buildkit.chain.model import LayerOutcome, RunOptions
from buildkit.cli import codebuild as cli_codebuild
from buildkit.cli import ecr as cli_ecr
from buildkit.cli import fleet as cli_fleet
from buildkit.cli import init as cli_init
from buildkit.cli import report as cli_report
from buildkit.cli import server as cli_server
from buildkit.cli import verify as cli_verify
from buildkit.cli.fleet import JobsOpt
from buildkit.cli.options import (
    APP_HELP,
    ConfigOpt,
    Globals,
    JsonOpt,
    RegistryOpt,
    ReleaseTagsOpt,
    refuse_empty_values,
    resolve_all,
)
from buildkit.config import envvars
from buildkit.config import loading as configmod
from buildkit.errors import INTERNAL_ERROR_EXIT, ConfigError, ImgbuildError, Interrupted

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Build, push and measure the ruby → base → app image chain of a Rails app.",
)


@app.callback()
def _global(
    ctx: typer.Context,
    config: ConfigOpt = None,
    registry: RegistryOpt = None,
    apps: Annotated[list[str] | None, typer.Option("--app", help=APP_HELP)] = None,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="IMGBUILD_DEBUG", help="Log every command; tracebacks."),
    ] = False,
) -> None:
    log.set_debug(debug)
    envvars.check(os.environ)  # every command: an empty IMGBUILD_REGISTRY is an error, not unset
    ctx.obj = Globals(config=config, registry=registry, apps=tuple(apps or ()))


def _layer_command(layer: str) -> None:
    def command(
        ctx: typer.Context,
        push: Annotated[
            bool, typer.Option("--push", help="Push every layer of the chain.")
        ] = False,
        no_cache: Annotated[
            bool, typer.Option("--no-cache", help=f"Rebuild the {layer} image without any cache.")
        ] = False,
        release_tags: ReleaseTagsOpt = None,
        verify: Annotated[
            bool,
            typer.Option(
                "--verify",
                help="app only: run `imgbuild verify` on the new image before anything is pushed.",
            ),
        ] = False,
        kustomize: Annotated[
            Path | None,
            typer.Option(
                "--kustomize",
                metavar="DIR",
                help="app --push only: pin the pushed app image by digest in DIR's "
                "kustomization (its images: entry).",
            ),
        ] = None,
        as_json: JsonOpt = False,
        config: ConfigOpt = None,
        registry: RegistryOpt = None,
        jobs: JobsOpt = None,
    ) -> None:
        from buildkit import reports
        from buildkit.run import kustomize as kustomizemod
        from buildkit.run import pipeline, summary

        if verify and layer != "app":
            raise ConfigError(
                f"--verify checks the app image; use it with `imgbuild app`, not {layer}"
            )
        _check_kustomize_flags(layer, kustomize, push=push)
        options = RunOptions(target=layer, push=push, no_cache=no_cache, release_tags=release_tags)
        configs = resolve_all(ctx, config, registry)
        if len(configs) > 1:
            if verify:
                raise ConfigError("--verify checks one app's image; pick the app with --app NAME")
            cli_fleet.run_apps(configs, options, jobs, as_json, kustomize=kustomize)
            return
        cli_fleet.given_jobs(jobs)  # a bad --jobs / IMGBUILD_JOBS is an error with one app too
        resolved = configs[0]
        target = kustomizemod.prepare(resolved, kustomize) if kustomize is not None else None
        timer = log.Timer()
        phases: dict[str, float] = {}
        verified, failure = None, None
        if verify:
            outcomes, verified, failure = _verify_then_push(resolved, options, phases)
        else:
            outcomes = pipeline.run(resolved, options, phases, meanwhile=_import_report)
        # A failed verify is reported too (the images built, the failed tests), then raised.
        data = reports.after_run(resolved, outcomes, timer.seconds, phases=phases, verify=verified)
        app_outcome = summary.app_outcome(outcomes)
        if app_outcome is not None:
            log.info(summary.processes_line(app_outcome))
        if target is not None and failure is None:
            data["kustomize"] = kustomizemod.pin(target, outcomes)
        if as_json:
            print(json.dumps(data, indent=2))
        if failure is not None:
            raise failure

    command.__doc__ = f"Build the {layer} image and whatever it depends on that is stale."
    app.command(name=layer)(command)


def _check_kustomize_flags(layer: str, kustomize: Path | None, *, push: bool) -> None:
    if kustomize is None:
        return
    if layer != "app":
        raise ConfigError(
            f"--kustomize pins the app image; use it with `imgbuild app --push`, not {layer}"
        )
    if not push:
        raise ConfigError(
            "--kustomize writes the pushed app image's digest, which only a registry gives; "
            "add --push"
        )


def _import_report() -> None:
    """Load the report's modules on a thread while the run waits on the registry and BuildKit
    (the pipeline calls this once planned): every run ends with the report, and its imports
    (~30 ms) were a one-shot run's last stretch (issue 17, P2-ONESHOT). The modules are acyclic
    (tests/test_architecture.py), so the two threads' imports cannot deadlock; a failure
    surfaces where after_run imports them."""
    import threading

    def load() -> None:
        import importlib

        with contextlib.suppress(Exception):
            for name in ("buildkit.reports.collect", "buildkit.reports.table"):
                importlib.import_module(name)

    threading.Thread(target=load, name="imgbuild-report-imports", daemon=True).start()


def _verify_then_push(
    config: configmod.Config, options: RunOptions, phases: dict[str, float]
) -> tuple[list[LayerOutcome], dict[str, object], ImgbuildError | None]:
    """Build without pushing, verify the image, then push: a failed verify pushes nothing and
    moves no tag (its failure is returned, to raise after the report). The outcomes are the
    build's, with the push's digests and times."""
    import dataclasses

    from buildkit.cli.verify import default_out_dir
    from buildkit.run import pipeline
    from buildkit.run import verify as verifymod

    built = pipeline.run(config, dataclasses.replace(options, push=False), phases)
    result = verifymod.verify(
        config,
        verifymod.VerifyOptions(
            out_dir=default_out_dir(config), app_image=built[-1].plan.spec.image, push=options.push
        ),
    )
    phases["verify"] = result.seconds
    if not options.push or result.failure is not None:
        return built, result.as_json(), result.failure
    pushed = pipeline.run(config, dataclasses.replace(options, no_cache=False), phases)
    for before, after in zip(built, pushed, strict=True):
        after.built, after.forced = before.built, before.forced
        after.build_seconds, after.steps = before.build_seconds, before.steps
        after.snapshot = before.snapshot
    return pushed, result.as_json(), None


# Registration order is the order of `imgbuild --help`: commands (init, ruby, base, app, report,
# promote, plan, verify), then groups (size, codebuild, ecr, server).
cli_init.register(app)
for _layer in configmod.LAYERS:
    _layer_command(_layer)
cli_verify.register(app)
for _group in (cli_report, cli_codebuild, cli_ecr, cli_server):
    _group.register(app)


@app.command()
def plan(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Say, per layer, whether it is up to date or must be built, and why."""
    from buildkit.chain import plan as planmod
    from buildkit.engine import docker_api
    from buildkit.run.access import open_registry

    configs = resolve_all(ctx, config, registry)
    if len(configs) > 1:
        cli_fleet.plan_apps(configs, as_json)
        return
    resolved, access = open_registry(configs[0])
    docker_api.client()
    client = access.client() if resolved.registry else None
    plans = planmod.make_plan(resolved, registry=client)
    if as_json:
        print(json.dumps({"layers": [p.as_json() for p in plans]}, indent=2))
        return
    for p in plans:
        print(f"{p.spec.name:5} {p.status:10} {p.spec.image}")
        for reason in p.reasons:
            print(f"      - {reason}")


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    # typer turns KeyboardInterrupt into a *returned* 130 in standalone_mode=False; raise our own
    # error instead (unless SIGINT was ignored by whoever started us, e.g. nohup).
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigterm)


def _exit_for_click(exc: Exception) -> None:
    """Usage errors, --help exits and aborts from click (typer may vendor its own copy of
    click, so these are recognised by shape, not by class)."""
    name = type(exc).__name__
    if name == "Abort":
        log.error("interrupted")
        sys.exit(130)
    code = getattr(exc, "exit_code", None)
    if name == "Exit" and isinstance(code, int):
        sys.exit(code)
    show = getattr(exc, "show", None)
    if callable(show) and isinstance(code, int):
        show()
        sys.exit(code)


def main() -> None:
    """Console entry point: the only place errors turn into messages and exit codes."""
    _install_signal_handlers()
    try:
        command = typer.main.get_command(app)
        refuse_empty_values(command)  # `--registry ''` is an error, never "not given"
        code = command(standalone_mode=False, prog_name="imgbuild")
    except ImgbuildError as exc:
        log.error(exc.message)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        log.error("interrupted")
        sys.exit(130)
    except Exception as exc:
        _exit_for_click(exc)
        if log.debug_enabled():
            traceback.print_exc()
        log.error(
            f"internal error: {type(exc).__name__}: {exc}; this is a bug in imgbuild, please "
            "report it with the output of --debug"
        )
        sys.exit(INTERNAL_ERROR_EXIT)
    if isinstance(code, int) and code:
        if code == 130:
            log.error("interrupted")
        sys.exit(code)
