"""`imgbuild verify`: prove the image works before it ships (docs/verify.md).

Build what is stale (the production app image for the smoke check; the test variant for the
tests), then on one private network: start the declared services and wait until each is ready,
start the production image as production would and check that it answers, run the test command
in the test variant with the services' addresses injected, collect its JUnit. Everything the run
started is removed at the end, also on errors and signals (run.session).

The test variant is the same chain with the test group installed: the same ruby image, a base
built with `verify.tests.bundle_without` (default: base.bundle_without without `test`) in
`<base repository>-test`, and the same source on it in `<app repository>-test`. The production
image never holds test gems.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from buildkit import log, proc
from buildkit.chain.layers import repository_name
from buildkit.chain.model import RunOptions
from buildkit.config.loading import Config
from buildkit.config.verify import Secret, VerifySettings
from buildkit.engine import containers
from buildkit.errors import (
    ImgbuildError,
    InputError,
    NotReadyError,
    ServiceImageError,
    SmokeCheckError,
    TestCommandError,
    TestsFailedError,
)
from buildkit.run import junitfiles, pipeline, smoke
from buildkit.run.session import Finished, Session, new_run_id

TEST_SUFFIX = "-test"
#: What a verify run answers when the image is not fit to ship (not bad input, not a build).
VERDICTS = (NotReadyError, ServiceImageError, SmokeCheckError, TestCommandError, TestsFailedError)
#: What a shell answers for a command it cannot find or run.
_NOT_FOUND_CODES = (126, 127)


@dataclass(frozen=True, kw_only=True)
class VerifyOptions:
    out_dir: Path
    smoke: bool = True
    tests: bool = True
    push: bool = False  # push the test variant too (the next fresh machine reuses its base)
    app_image: str | None = None  # the production image, when the caller built it already


@dataclass(kw_only=True)
class TestsResult:
    image: str
    command: str
    exit_code: int | None
    seconds: float
    junit: list[Path]
    summary: junitfiles.Summary
    timeout: float
    output: str = field(default="", repr=False)

    def tail(self, count: int = 2) -> str:
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        return " | ".join(lines[-count:])[:300] or "no output"

    def as_json(self) -> dict[str, object]:
        return {
            "image": self.image,
            "command": self.command,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 2),
            "junit": [str(p) for p in self.junit],
            **self.summary.as_json(),
        }


@dataclass(kw_only=True)
class VerifyResult:
    run_id: str
    out_dir: Path
    seconds: float = 0.0
    services: dict[str, float] = field(default_factory=dict)  # name -> seconds until ready
    smoke: smoke.SmokeResult | None = None
    tests: TestsResult | None = None
    junit: list[Path] = field(default_factory=list)  # every JUnit file for a report group
    failure: ImgbuildError | None = None  # the verdict when it failed (raise it after reporting)

    @property
    def passed(self) -> bool:
        tests = self.tests
        tests_ok = tests is None or (
            tests.exit_code == 0 and not tests.summary.failures and not tests.summary.errors
        )
        return self.failure is None and tests_ok

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def as_json(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "error": self.failure.message if self.failure else None,
            "run": self.run_id,
            "seconds": round(self.seconds, 2),
            "out_dir": str(self.out_dir),
            "services": {k: round(v, 2) for k, v in self.services.items()},
            "smoke": self.smoke.as_json() if self.smoke else None,
            "tests": self.tests.as_json() if self.tests else None,
            "junit": [str(p) for p in self.junit],
        }


def test_variant(config: Config) -> Config:
    """The chain with the test group installed, in repositories of its own (`-test`)."""
    tests = config.verify.tests
    without = (
        tests.bundle_without
        if tests is not None and tests.bundle_without is not None
        else tuple(group for group in config.base.bundle_without if group != "test")
    )
    repositories = dict(config.ecr.repositories)
    for layer in ("base", "app"):
        repositories[layer] = repository_name(config, layer) + TEST_SUFFIX
    repositories["ruby"] = repository_name(config, "ruby")
    return dataclasses.replace(
        config,
        base=dataclasses.replace(config.base, bundle_without=without),
        # Tests compile assets on demand (RAILS_ENV=test); no precompiled assets image.
        app=dataclasses.replace(
            config.app, assets=dataclasses.replace(config.app.assets, precompile=False)
        ),
        ecr=dataclasses.replace(config.ecr, repositories=repositories),
    )


def verify(config: Config, options: VerifyOptions) -> VerifyResult:
    """Build, start, check, test. A failed check or test is the result's `failure` (so that the
    caller can report it first); bad input and a failed build raise at once."""
    settings = config.verify
    timer = log.Timer()
    run_tests = options.tests and settings.tests is not None
    if options.tests and settings.tests is None and not options.smoke:
        raise InputError(
            f"{config.path}: verify.tests is not set; add verify.tests.command (e.g. bin/rails "
            "test) or run the smoke check alone"
        )
    secrets = _read_secrets(settings.secrets)
    app_image = _production_image(config, options) if options.smoke else None
    test_image = _test_image(config, options) if run_tests else None
    result = VerifyResult(run_id=new_run_id(config.name), out_dir=options.out_dir)
    _clear_previous(options.out_dir)
    cases: list[junitfiles.Case] = []
    try:
        with Session(result.run_id) as session:
            urls = _start_services(session, settings, result, probe_image=test_image or app_image)
            base_env = {**settings.env, **secrets, **urls}
            if app_image is not None:
                result.smoke = _smoke(session, config, app_image, base_env, options, cases)
            if test_image is not None:
                result.tests = _tests(session, config, test_image, base_env, options, cases)
        _judge_tests(config, result)
    except VERDICTS as exc:
        result.failure = exc
    finally:
        if cases:
            result.junit.insert(
                0, junitfiles.write_own(options.out_dir / junitfiles.OWN_FILE, cases)
            )
    result.seconds = timer.seconds
    if result.failure is None:
        log.info(f"verify: passed in {result.seconds:.1f}s (JUnit and logs in {options.out_dir})")
    return result


def _clear_previous(out_dir: Path) -> None:
    """Files an earlier run left in out_dir would be read as this run's results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / "tests", ignore_errors=True)
    for name in (junitfiles.OWN_FILE, "app.log"):
        (out_dir / name).unlink(missing_ok=True)


def _read_secrets(declared: tuple[Secret, ...]) -> dict[str, str]:
    values = {}
    for secret in declared:
        if secret.from_env is not None:
            value = os.environ.get(secret.from_env, "")
            if not value:
                raise InputError(
                    f"{secret.where}: verify.secrets.{secret.name} comes from ${secret.from_env}, "
                    "which is not set; export it (CodeBuild: a Secrets Manager variable)"
                )
        else:
            assert secret.from_file is not None
            try:
                value = secret.from_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InputError(
                    f"{secret.where}: verify.secrets.{secret.name}: cannot read "
                    f"{secret.from_file} ({exc.strerror}); create it or fix the path"
                ) from None
        proc.register_secret(value)
        values[secret.name] = value
    return values


def _production_image(config: Config, options: VerifyOptions) -> str:
    if options.app_image is not None:
        return options.app_image
    outcomes = pipeline.run(config, RunOptions(target="app", push=False))
    return outcomes[-1].plan.spec.image


def _test_image(config: Config, options: VerifyOptions) -> str:
    log.info("verify: the test variant (base with the test group, same ruby and source)")
    variant = test_variant(config)
    # Content tags only: the variant is a cache for the next build, not a release, and no
    # git-<sha> or pr-N tag may point at an image whose tests may fail.
    run = RunOptions(target="app", push=options.push, release_tags=False, content_tags_only=True)
    outcomes = pipeline.run(variant, run)
    image = outcomes[-1].plan.spec.image
    if containers.image_present(image):
        return image
    # Pushed and up to date in the registry: the daemon needs it to run it.
    pipeline.run(variant, RunOptions(target="app", push=False))
    return image


def _start_services(
    session: Session, settings: VerifySettings, result: VerifyResult, *, probe_image: str | None
) -> dict[str, str]:
    urls: dict[str, str] = {}
    started = []
    for service in settings.services:
        log.info(f"verify: starting service {service.name} ({service.image})")
        started.append((service, session.start_service(service)))
        if service.url and service.url_env:
            urls[service.url_env] = service.url
    for service, container in started:
        assert probe_image is not None
        result.services[service.name] = session.wait_ready(service, container, probe_image)
        log.info(f"verify: service {service.name} ready in {result.services[service.name]:.1f}s")
    return urls


def _smoke(
    session: Session,
    config: Config,
    image: str,
    env: Mapping[str, str],
    options: VerifyOptions,
    cases: list[junitfiles.Case],
) -> smoke.SmokeResult:
    timer = log.Timer()
    try:
        found = smoke.check(
            session,
            image,
            {**env, "PORT": str(config.app.port)},
            config.app.port,
            config.verify.smoke,
            options.out_dir,
        )
    except Exception as exc:
        cases.append(junitfiles.Case(name="smoke", seconds=timer.seconds, failure=str(exc)))
        raise
    cases.append(junitfiles.Case(name="smoke", seconds=found.seconds))
    return found


def _tests(
    session: Session,
    config: Config,
    image: str,
    env: Mapping[str, str],
    options: VerifyOptions,
    cases: list[junitfiles.Case],
) -> TestsResult:
    tests = config.verify.tests
    assert tests is not None
    test_env = {"RAILS_ENV": "test", "RACK_ENV": "test", **env, **tests.env}
    log.info(f"verify: running `{tests.command}` in {image}")
    container, finished = session.run_to_end(
        image, ["/bin/sh", "-c", tests.command], test_env, tests.timeout, user=tests.user
    )
    junit_dir = options.out_dir / "tests"
    files: list[Path] = []
    if finished.exit_code is not None:
        for path in tests.junit:  # test/reports and spec/reports must not land in one folder
            parent = junit_dir.joinpath(*PurePosixPath(path).parent.parts)
            files += containers.copy_out(container, f"/app/{path}", parent)
        containers.remove_container(container)
    summary = junitfiles.summarize(files)
    if not files:
        cases.append(_command_case(tests.command, tests.timeout, finished))
    return TestsResult(
        image=image,
        command=tests.command,
        exit_code=finished.exit_code,
        seconds=finished.seconds,
        junit=files,
        summary=summary,
        timeout=tests.timeout,
        output=finished.output,
    )


def _command_case(command: str, timeout: float, finished: Finished) -> junitfiles.Case:
    failure = None
    if finished.exit_code is None:
        failure = f"`{command}` did not finish within {timeout:.0f}s"
    elif finished.exit_code:
        failure = f"`{command}` exited with status {finished.exit_code}"
    return junitfiles.Case(
        name="tests", seconds=finished.seconds, failure=failure, output=finished.output
    )


def _judge_tests(config: Config, result: VerifyResult) -> None:
    tests = result.tests
    if tests is None:
        return
    result.junit.extend(tests.junit)
    where = f"{config.path}: verify.tests.command"
    if tests.exit_code is None:
        raise TestsFailedError(
            f"{where}: `{tests.command}` did not finish within {tests.timeout:.0f}s "
            "(verify.tests.timeout); the container was removed"
        )
    if tests.exit_code in _NOT_FOUND_CODES and tests.summary.tests == 0:
        raise TestCommandError(
            f"{where}: `{tests.command}` could not run in {tests.image} (exit "
            f"{tests.exit_code}: {tests.tail()}); fix the command or add it to the image"
        )
    if tests.exit_code != 0 or tests.summary.failures or tests.summary.errors:
        junit = tests.junit[0] if tests.junit else result.out_dir / junitfiles.OWN_FILE
        raise TestsFailedError(
            f"verify: tests failed (`{tests.command}` exited {tests.exit_code}): "
            f"{tests.summary.sentence()}; JUnit: {junit}"
        )
    log.info(f"verify: tests passed: {tests.summary.sentence()} in {tests.seconds:.1f}s")
