"""`imgbuild report` and `imgbuild size check` (docs/reports.md)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from buildkit import log
from buildkit.cli.options import ConfigOpt, json_option, registry_option, resolve, resolve_all

if TYPE_CHECKING:
    from buildkit.config.budgets import Budget
    from buildkit.config.loading import Config
    from buildkit.reports.document import Report

# The shared --json and --registry, in the words these commands' --help has always used.
ReportJsonOpt = Annotated[bool, json_option("Print the report as JSON on stdout.")]
ReportRegistryOpt = Annotated[
    str | None, registry_option("Registry HOST[:PORT][/PATH]; overrides the config.")
]
BaselineOpt = Annotated[
    Path | None,
    typer.Option(
        "--baseline",
        help="Baseline file (default: budgets.baseline, else imgbuild-baseline.json next to "
        "the config).",
    ),
]
BaselineTagOpt = Annotated[
    str | None,
    typer.Option("--baseline-tag", help="Compare with the chain's images under this registry tag."),
]
HistoryOpt = Annotated[
    Path | None,
    typer.Option("--history-file", help="Build history (default: in the imgbuild cache dir)."),
]
JunitOpt = Annotated[
    Path | None, typer.Option("--junit", help="Write one JUnit test case per image budget.")
]

size_app = typer.Typer(
    help="The size-regression gate.", no_args_is_help=True, rich_markup_mode=None
)


def _history_path(config: Config, explicit: Path | None) -> Path:
    from buildkit.reports import history

    return explicit or history.default_path(config)


def report(
    ctx: typer.Context,
    as_json: ReportJsonOpt = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print a pull-request comment (Markdown).")
    ] = False,
    junit: JunitOpt = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML page.")
    ] = None,
    show_history: Annotated[
        bool, typer.Option("--history", help="Show the recorded builds instead.")
    ] = False,
    baseline: BaselineOpt = None,
    baseline_tag: BaselineTagOpt = None,
    history_file: HistoryOpt = None,
    config: ConfigOpt = None,
    registry: ReportRegistryOpt = None,
) -> None:
    """Sizes, deploy pull delta, build times and budgets of the chain's current images."""
    from buildkit import fsutil
    from buildkit.reports import collect, history, table
    from buildkit.reports import html as htmlmod
    from buildkit.reports import junit as junitmod
    from buildkit.reports import markdown as markdownmod

    if as_json and markdown:
        raise typer.BadParameter("choose one of --json and --markdown")
    configs = resolve_all(ctx, config, registry)
    one_app_only = junit or html or show_history or baseline or baseline_tag or history_file
    if len(configs) > 1 and not one_app_only:
        _report_apps(configs, as_json=as_json, markdown=markdown)
        return
    # Several apps and a one-app option: resolve says to pick one with --app.
    resolved = configs[0] if len(configs) == 1 else resolve(ctx, config, registry)
    path = _history_path(resolved, history_file)
    if show_history:
        _print_history(history.read(path), as_json=as_json)
        return
    result = collect.on_demand(
        resolved, baseline_path=baseline, baseline_tag=baseline_tag, history_path=path
    )
    if junit:
        junitmod.write(result, junit)
        log.info(f"wrote {junit}")
    if html:
        fsutil.atomic_write_text(html, htmlmod.render(result, history.read(path)))
        log.info(f"wrote {html}")
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
    elif markdown:
        print(markdownmod.render(result))
    elif not (junit or html):
        import sys

        table.print_report(result, sys.stdout)


def _report_apps(configs: Sequence[Config], *, as_json: bool, markdown: bool) -> None:
    """`imgbuild report` over an `apps:` config: each app's report, one after the other
    (`--json`: {"apps": [{"app", "name", "report"}]}). --junit, --html, --history and the
    baselines work on one app: they need --app NAME."""
    import sys

    from buildkit.reports import collect, table
    from buildkit.reports import markdown as markdownmod

    documents = []
    for config in configs:
        key = config.app_key or config.name
        result = collect.on_demand(config, history_path=_history_path(config, None))
        if as_json:
            documents.append({"app": key, "name": config.name, "report": result.as_json()})
        elif markdown:
            print(f"### app {key}\n\n{markdownmod.render(result)}")
        else:
            print(f"app {key} ({config.name})")
            table.print_report(result, sys.stdout)
    if as_json:
        print(json.dumps({"apps": documents}, indent=2))


def _print_history(records: list[dict[str, Any]], *, as_json: bool) -> None:
    from buildkit.reports import history, units

    if as_json:
        print(json.dumps(records, indent=2))
        return
    print(
        f"{'when':20} {'commit':12} {'app image':14} {'compressed':>11} {'uncompressed':>13} "
        f"{'wall':>8}  built"
    )
    for record in records:
        app = history.images_of(record).get("app") or {}
        built = [
            n for n, e in history.images_of(record).items() if (e.get("times") or {}).get("built")
        ]
        print(
            f"{record.get('at', '')!s:20} {str(record.get('commit') or '-')[:12]:12} "
            f"{str(app.get('key') or '-')[:12]:14} {units.size(app.get('compressed_bytes')):>11} "
            f"{units.size(app.get('uncompressed_bytes')):>13} "
            f"{units.seconds((record.get('run') or {}).get('wall_seconds')):>8}  "
            f"{', '.join(built) or '-'}"
        )


def _budgets(
    config: Config, metric: str | None, max_bytes: str | None, max_growth: str | None
) -> dict[str, Budget]:
    from buildkit.config import budgets

    overrides: dict[str, Any] = {}
    try:
        if metric is not None:
            if metric not in budgets.METRICS:
                raise ValueError(f"{metric!r} is not one of {', '.join(budgets.METRICS)}")
            overrides["metric"] = metric
        if max_bytes is not None:
            overrides["max_bytes"] = budgets.parse_size(max_bytes)
        if max_growth is not None:
            overrides["max_growth"] = budgets.parse_percent(max_growth)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return {
        name: dataclasses.replace(config.budgets.for_image(name), **overrides)
        for name in budgets.IMAGES
    }


@size_app.command("check")
def size_check(
    ctx: typer.Context,
    baseline: BaselineOpt = None,
    baseline_tag: BaselineTagOpt = None,
    max_growth: Annotated[
        str | None, typer.Option("--max-growth", help="Allowed growth over the baseline, e.g. 5%.")
    ] = None,
    max_bytes: Annotated[
        str | None, typer.Option("--max-bytes", help="Largest allowed size, e.g. 350MB or 1.2GiB.")
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option("--metric", help="What the budgets measure: compressed or uncompressed."),
    ] = None,
    update_baseline: Annotated[
        bool,
        typer.Option(
            "--update-baseline", help="Write the new baseline when nothing regressed (a ratchet)."
        ),
    ] = False,
    junit: JunitOpt = None,
    as_json: ReportJsonOpt = False,
    history_file: HistoryOpt = None,
    config: ConfigOpt = None,
    registry: ReportRegistryOpt = None,
) -> None:
    """Fail (exit 10) when an image grew past its budget or baseline; say what grew."""
    from buildkit.reports import collect
    from buildkit.reports import junit as junitmod

    resolved = resolve(ctx, config, registry)
    result = collect.on_demand(
        resolved,
        baseline_path=baseline,
        baseline_tag=baseline_tag,
        history_path=_history_path(resolved, history_file),
        budgets=_budgets(resolved, metric, max_bytes, max_growth),
    )
    _require_measured(result)
    if junit:
        junitmod.write(result, junit)
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
    _verdict(resolved, result, baseline, update_baseline=update_baseline)


def _require_measured(result: Report) -> None:
    from buildkit.errors import ImgbuildError

    if result.missing:
        raise ImgbuildError(
            f"{', '.join(result.missing)}: neither in the registry nor local; build the chain "
            "first (imgbuild app --push)"
        )
    for check in result.checks:
        if check.skipped and check.current is None:
            raise ImgbuildError(
                f"{check.layer}: no {check.metric} size ({check.skipped}); run `imgbuild app "
                "--push` first, or check the uncompressed size with --metric uncompressed"
            )


def _verdict(
    config: Config, result: Report, baseline: Path | None, *, update_baseline: bool
) -> None:
    from buildkit.errors import SizeRegressionError
    from buildkit.reports import baseline as baselines
    from buildkit.reports import gate

    for check in result.checks:
        state = "skip" if check.skipped else ("ok" if check.passed else "FAIL")
        log.info(f"size {state}: {check.sentence()}")
    failures = gate.failed(result.checks)
    if failures:
        where = f" (baseline {result.baseline.source})" if result.baseline else ""
        kept = "; the baseline was not updated" if update_baseline else ""
        raise SizeRegressionError(
            f"size check failed{where}: " + " | ".join(c.sentence() for c in failures) + kept
        )
    if update_baseline:
        path = baseline or baselines.default_path(config)
        metrics = {c.layer: c.metric for c in result.checks}
        old = result.baseline if result.baseline and result.baseline.source == str(path) else None
        images, lines = baselines.ratchet(old, result.images, metrics)
        baselines.write(path, images, result.commit)
        for line in lines:
            log.info(f"baseline {line}")
        log.info(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add `imgbuild report` and `imgbuild size ...` to the main CLI."""
    app.command("report")(report)
    app.add_typer(size_app, name="size")
