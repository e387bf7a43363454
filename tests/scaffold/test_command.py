"""The app's command and port: Procfile parsing, the fallbacks, what a shell-less CMD can carry."""

from __future__ import annotations

from pathlib import Path

import pytest
from rails_apps import write

from buildkit.scaffold import command as commandmod

RAILS_PUMA_RB = 'max_threads = ENV.fetch("RAILS_MAX_THREADS", 3)\nport ENV.fetch("PORT", 3000)\n'
PUMA_GEMS = frozenset({"rails", "puma"})


def detect(root: Path, gems: frozenset[str] = PUMA_GEMS) -> commandmod.Command:
    return commandmod.detect(root, gems)


def test_procfile_parsing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Procfile",
        "# processes\n\nweb: bundle exec puma -C config/puma.rb\n"
        "worker:   bundle exec sidekiq -q default  \nrelease: bin/rails db:migrate\n"
        "web: ignored duplicate\nnot a process line\nempty:\n",
    )
    assert commandmod.read_procfile(path) == {
        "web": "bundle exec puma -C config/puma.rb",
        "worker": "bundle exec sidekiq -q default",
        "release": "bin/rails db:migrate",
    }


def test_procfile_web_wins_and_other_types_are_kept(tmp_path: Path) -> None:
    write(tmp_path, "config/puma.rb", RAILS_PUMA_RB)
    write(tmp_path, "Procfile", "worker: bundle exec good_job\nweb: bin/thrust bin/rails server\n")
    found = detect(tmp_path)
    assert (found.command, found.source) == ("bin/thrust bin/rails server", "Procfile (web)")
    assert found.processes == {"worker": "bundle exec good_job"}
    assert found.procfile_web == "bin/thrust bin/rails server"


def test_procfile_dev_is_not_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Procfile.dev",
        "web: bin/rails server -p 3000\ncss: bin/rails tailwindcss:watch\n",
    )
    assert detect(tmp_path).source != "Procfile (web)"


def test_puma_config_when_there_is_no_procfile(tmp_path: Path) -> None:
    write(tmp_path, "config/puma.rb", RAILS_PUMA_RB)
    write(tmp_path, "bin/rails", "#!/usr/bin/env ruby\n")
    found = detect(tmp_path)
    assert (found.command, found.source) == (commandmod.PUMA_COMMAND, "config/puma.rb")
    assert found.port == 3000


def test_puma_config_without_a_port_would_listen_on_9292_so_rails_server(tmp_path: Path) -> None:
    write(tmp_path, "config/puma.rb", "threads 1, 5\n")
    write(tmp_path, "bin/rails", "#!/usr/bin/env ruby\n")
    assert detect(tmp_path).command == commandmod.RAILS_COMMAND


def test_puma_config_without_the_puma_gem_is_not_run_with_puma(tmp_path: Path) -> None:
    write(tmp_path, "config/puma.rb", RAILS_PUMA_RB)
    write(tmp_path, "bin/rails", "#!/usr/bin/env ruby\n")
    assert detect(tmp_path, frozenset({"rails", "falcon"})).command == commandmod.RAILS_COMMAND


def test_no_bin_rails_falls_back_to_imgbuilds_default(tmp_path: Path) -> None:
    found = detect(tmp_path)
    assert found.command == commandmod.BUNDLE_RAILS_COMMAND == "bundle exec rails server -b 0.0.0.0"
    assert found.source == "imgbuild's default"


@pytest.mark.parametrize(
    ("web", "command", "rewritten"),
    [
        ("bundle exec puma -C config/puma.rb", "bundle exec puma -C config/puma.rb", False),
        ("bin/rails server -p $PORT -b 0.0.0.0", "bin/rails server -p 3000 -b 0.0.0.0", True),
        ("bundle exec puma -p ${PORT:-5000}", "bundle exec puma -p 3000", True),
        ("bundle exec puma -p ${PORT}", "bundle exec puma -p 3000", True),
        ('bundle exec puma -C "config/puma.rb"', "bundle exec puma -C config/puma.rb", False),
        (
            "RAILS_LOG_LEVEL=info MALLOC_ARENA_MAX=2 bin/rails server",
            "env RAILS_LOG_LEVEL=info MALLOC_ARENA_MAX=2 bin/rails server",
            True,
        ),
    ],
)
def test_procfile_lines_made_plain_words(
    tmp_path: Path, web: str, command: str, rewritten: bool
) -> None:
    write(tmp_path, "Procfile", f"web: {web}\n")
    found = detect(tmp_path)
    assert (found.command, found.source, found.rejected) == (command, "Procfile (web)", None)
    assert bool(found.rewrites) is rewritten


@pytest.mark.parametrize(
    ("web", "why"),
    [
        ("bin/rails db:migrate && bin/rails server", "shell operators"),
        ("bundle exec puma | tee log/web.log", "shell operators"),
        ("bundle exec puma > log/web.log", "shell operators"),
        ("bin/rails server -e $RAILS_ENV", "needs a shell"),
        ("bundle exec puma -t ${MIN:-1}:${MAX:-5}", "needs a shell"),
        ("bin/web 'two words'", "needs a shell"),
        ("bundle exec rake jobs:* ", "needs a shell"),
        ("bin/rails server 'unclosed", "does not parse"),
        ("RAILS_ENV=production", "only sets variables"),
    ],
)
def test_procfile_lines_that_need_a_shell_are_not_used(tmp_path: Path, web: str, why: str) -> None:
    write(tmp_path, "bin/rails", "#!/usr/bin/env ruby\n")
    write(tmp_path, "Procfile", f"web: {web}\n")
    found = detect(tmp_path)
    assert found.command == commandmod.RAILS_COMMAND
    assert found.procfile_web == web.strip()
    assert found.rejected is not None
    assert why in found.rejected
    assert "$" not in found.command


@pytest.mark.parametrize(
    ("web", "puma_rb", "port", "source"),
    [
        ("bin/rails server -p 4000 -b 0.0.0.0", "", 4000, "the command's own port option"),
        ("bundle exec puma --port=4001", "", 4001, "the command's own port option"),
        ("bundle exec puma -b tcp://0.0.0.0:4002", "", 4002, "the command's own port option"),
        ("bundle exec puma -C config/puma.rb", "port 4003\n", 4003, "config/puma.rb's"),
        ("bundle exec puma", 'bind "tcp://0.0.0.0:4004"\n', 4004, "config/puma.rb's"),
        ("bundle exec puma -C config/puma.rb", RAILS_PUMA_RB, 3000, "Rails' default"),
        ("bundle exec puma -C config/other.rb", "port 4005\n", 3000, "Rails' default"),
        ("bin/rails server -b 0.0.0.0", "port 4006\n", 3000, "Rails' default"),
        ("bin/rails server -p $PORT", "", 3000, "Rails' default"),
    ],
)
def test_port(tmp_path: Path, web: str, puma_rb: str, port: int, source: str) -> None:
    write(tmp_path, "Procfile", f"web: {web}\n")
    if puma_rb:
        write(tmp_path, "config/puma.rb", puma_rb)
    found = detect(tmp_path)
    assert (found.port, found.port_source) == (port, source)


def test_puma_rb_literal_port_without_procfile(tmp_path: Path) -> None:
    write(tmp_path, "config/puma.rb", "port 5100\n")
    found = detect(tmp_path)
    assert (found.command, found.port) == (commandmod.PUMA_COMMAND, 5100)


def test_other_processes_become_dns_label_names_and_plain_words(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Procfile",
        "web: bin/web\nworker: bundle exec sidekiq -c ${PORT}\nsidekiq_low: bin/low\n"
        "Web: bin/other\nrelease: bin/migrate; bin/seed\nsidekiq-low: bin/again\n",
    )
    found = {p.procfile_name: p for p in commandmod.other_processes(detect(tmp_path))}
    assert (found["worker"].name, found["worker"].command) == (
        "worker",
        "bundle exec sidekiq -c 3000",
    )
    assert found["worker"].rewrites == ("$PORT written as 3000, the port the image sets PORT to",)
    assert (found["sidekiq_low"].name, found["sidekiq_low"].command) == ("sidekiq-low", "bin/low")
    assert found["Web"].command is None
    assert found["Web"].rejected == "its name reads as web, which another process has; rename it"
    assert found["sidekiq-low"].command is None  # sidekiq_low took the name first
    assert found["release"].command is None
    assert found["release"].rejected is not None
    assert found["release"].rejected.endswith("; put it in a script (bin/release) and write that")
