"""The imgbuild.yaml that `imgbuild init` writes: only keys docs/config.md documents, each with a
comment saying where its value came from; what has no key (.dockerignore suggestions, a Procfile
line that needs a shell) is said in comments only.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable

import yaml

from buildkit.config import schema
from buildkit.scaffold import command as commandmod
from buildkit.scaffold import packages as packagesmod
from buildkit.scaffold.detect import Assets, Detection
from buildkit.source import dockerignore

WIDTH = 100


def render(detection: Detection) -> str:
    """The whole file."""
    sections = [
        _header(detection),
        _top_level(detection),
        _ruby(detection),
        _base(detection),
        _app(detection),
        _dockerignore(detection),
    ]
    return "\n".join("\n".join(lines) for lines in sections if lines).rstrip("\n") + "\n"


def scalar(value: str) -> str:
    """A YAML scalar for value: plain when it reads back as the same string, else quoted."""
    try:
        plain_ok = yaml.safe_load(value) == value and "#" not in value and "\n" not in value
    except yaml.YAMLError:
        plain_ok = False
    return value if plain_ok and value.strip() == value else json.dumps(value, ensure_ascii=False)


def flow_list(values: Iterable[str]) -> str:
    items = [scalar(v) for v in values]
    if any(c in item for item in items for c in ",[]{}"):
        items = [json.dumps(v, ensure_ascii=False) for v in values]
    return "[" + ", ".join(items) + "]"


def comment(text: str, indent: str = "", hang: str = "", lead: str = "") -> list[str]:
    """`text` as `# ` lines of at most WIDTH columns, the first after `lead`, the others after
    `hang`."""
    prefix = f"{indent}# "
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=prefix + lead,
        subsequent_indent=prefix + hang,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [prefix.rstrip()]


def _header(d: Detection) -> list[str]:
    lines = comment(
        f"imgbuild.yaml for {d.name}, written by `imgbuild init` from what the app says; each "
        "value's comment names its source. Every key is documented in imgbuild's "
        "docs/config.md. `imgbuild plan` shows what would be built; `imgbuild app` builds the "
        "ruby -> base -> app chain."
    )
    for warning in d.warnings:
        lines += comment(f"WARNING: {warning}.", hang="  ")
    return [*lines, ""]


def _top_level(d: Detection) -> list[str]:
    lines = comment(
        f"Images {d.name}-ruby, {d.name}-base and {d.name}-app; from {d.name_source}"
        + (
            f" {d.root.name!r}, made a valid image name"
            if d.name_source == "the directory name" and d.name != d.root.name
            else ""
        )
        + "."
    )
    lines.append(f"name: {scalar(d.name)}")
    lines.append("")
    if d.registry:
        lines += comment("From --registry. `imgbuild app --push` pushes the chain there.")
        lines.append(f"registry: {scalar(d.registry)}")
    else:
        lines += comment(
            "No registry: `imgbuild app` builds locally. To push (`imgbuild app --push`), set "
            "one here, export IMGBUILD_REGISTRY, or pass --registry; `ecr` means this account's "
            "ECR:"
        )
        lines.append("# registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    lines.append("")
    if d.base_image == schema.DEFAULT_BASE:
        lines += comment(
            f"The OS image is imgbuild's default, {schema.DEFAULT_BASE} (Debian 12), and the "
            "package names below are bookworm's. For Debian 13 (names in docs/init.md):"
        )
        lines.append("# base_image: debian:trixie-slim")
    else:
        lines += comment(
            f"The OS image comes from IMGBUILD_BASE_IMAGE ({d.base_image}), and the package "
            f"names below are Debian {d.release}'s: export it whenever imgbuild builds this app, "
            "or write it here:"
        )
        lines.append(f"# base_image: {d.base_image}")
    return [*lines, ""]


def _ruby(d: Detection) -> list[str]:
    lines = ["ruby:"]
    lines += comment(
        f"From {d.ruby.source} ({d.ruby.written}). ruby-build {schema.DEFAULT_RUBY_BUILD} "
        "compiles it: a Ruby released after that needs a newer ruby_build tag. Offline, "
        "source.path (a Ruby tarball) and ruby_build (a ruby-build checkout) avoid the "
        "downloads.",
        "  ",
    )
    lines.append(f"  version: {json.dumps(d.ruby.version)}")
    lines.append(
        "  # jemalloc: true   # link Ruby against jemalloc: less memory for Puma's threads"
    )
    lines.append(
        "  # yjit: true       # compile YJIT in (rustc in the build); Rails 7.2+ enables it"
    )
    return [*lines, ""]


def _base(d: Detection) -> list[str]:
    selection = d.packages
    lines = ["base:"]
    lines += comment(
        f"OS packages of the final image, for gems in Gemfile.lock ({_gems(len(d.lock.gems))}; "
        "the table is in docs/init.md):",
        "  ",
    )
    lines += _reasons(((u.gem, u.runtime, _optional(u)) for u in selection.uses), "  ")
    if not selection.packages:
        lines += comment("none of its gems needs one at run time", "  ", lead="  ")
    lines.append(f"  packages: {flow_list(selection.packages)}")
    lines += comment(
        "Packages of the gem build stage only (it always has build-essential and pkg-config; "
        "none of them reaches the final image):",
        "  ",
    )
    lines += _reasons(((u.gem, u.build, "") for u in selection.uses), "  ")
    if not selection.build_packages:
        lines += comment("none of its gems needs more than the compilers", "  ", lead="  ")
    lines.append(f"  build_packages: {flow_list(selection.build_packages)}")
    quiet = [u.gem for u in selection.uses if not (u.build or u.runtime or u.skipped)]
    if quiet:
        lines += comment(f"No package needed: {', '.join(quiet)}.", "  ", "  ")
    for use in selection.uses:
        if use.skipped or use.unsupported:
            lines += comment(f"{use.gem}: {use.note}.", "  ", "  ")
    if selection.build_args:
        lines += comment(
            "Build arguments of the base image's bundle install (part of its key):", "  "
        )
        lines.append("  build_args:")
        for name, value in selection.build_args.items():
            for use in selection.uses:
                if name in _args_of(use.gem):
                    lines += comment(f"{use.gem}: {use.note}.", "    ")
            lines.append(f"    {name}: {json.dumps(value)}")
    lines += comment(
        "Gem groups left out of the image (imgbuild's default): "
        "bundle_without: [development, test]",
        "  ",
    )
    return [*lines, ""]


def _app(d: Detection) -> list[str]:
    cmd = d.command
    lines = ["app:"]
    if cmd.source == "Procfile (web)":
        source = "Procfile's web: line"
        if cmd.rewrites:
            source += f" ({'; '.join(cmd.rewrites)}: the image runs it without a shell)"
        lines += comment(f"From {source}.", "  ")
    else:
        lead = "No Procfile web: line: " if cmd.procfile_web is None else ""
        lines += comment(lead + _command_reason(cmd.source), "  ")
        if cmd.procfile_web is not None:
            lines += comment(
                f"Procfile's web: line ({cmd.procfile_web}) is not used: {cmd.rejected}, and "
                "the image runs app.command's words without a shell. To use it, put it in a "
                "script (bin/web) and set `command: bin/web`.",
                "  ",
            )
    lines.append(f"  command: {scalar(cmd.command)}")
    lines += comment(f"Port: {cmd.port_source}; the image exposes it and sets PORT to it.", "  ")
    lines.append(f"  port: {cmd.port}")
    lines += _processes(d)
    lines += _assets(d)
    if d.bootsnap:
        lines += comment(
            "bootsnap is in Gemfile.lock: its cache fills tmp/cache/bootsnap at the first boot "
            "(tmp/ is writable by the app's user).",
            "  ",
        )
    lines += comment(
        "imgbuild's app image sets RAILS_ENV=production (app.build_args can override it). At "
        "run time Rails needs RAILS_MASTER_KEY (or SECRET_KEY_BASE) and its database settings "
        "from the environment: imgbuild never puts secrets in an image. The app runs as the "
        "non-root user `app` (app.user).",
        "  ",
    )
    return [*lines, ""]


def _processes(d: Detection) -> list[str]:
    """`app.processes` from the Procfile's other lines, each with where it came from."""
    entries = commandmod.other_processes(d.command)
    if not entries:
        return []
    lines = comment(
        "Procfile's other process types (app.processes): imgbuild builds one image, the image "
        "records each process's command in a label, and a deploy runs each from the same digest "
        "with its command (web is app.command above, the image's CMD). A command runs without "
        "a shell, like app.command.",
        "  ",
    )
    if not any(entry.command for entry in entries):
        none = comment("None of them can be written here:", "  ")
        return lines + none + _rejected(entries, "  ")
    lines.append("  processes:")
    for entry in entries:
        if entry.command is None:
            continue
        source = f"From Procfile's {entry.procfile_name}: line"
        if entry.name != entry.procfile_name:
            source += f", named {entry.name} (a DNS label, as Kubernetes names containers)"
        if entry.rewrites:
            source += f" ({'; '.join(entry.rewrites)})"
        lines += comment(source + ".", "    ")
        lines.append(f"    {entry.name}: {scalar(entry.command)}")
    return lines + _rejected(entries, "    ")


def _rejected(entries: list[commandmod.Process], indent: str) -> list[str]:
    lines: list[str] = []
    for entry in entries:
        if entry.command is None:
            lines += comment(
                f"Procfile's {entry.procfile_name}: line ({entry.line}) is not used: "
                f"{entry.rejected}.",
                indent,
            )
    return lines


def _assets(d: Detection) -> list[str]:
    assets = d.assets
    if not (assets.paths or assets.precompiles or assets.inputs):
        return []
    found = ", ".join(assets.paths) or (
        "config/importmap.rb" if assets.precompiles else "no app/assets or app/javascript"
    )
    if assets.gems:
        found += f" ({', '.join(assets.gems)})"
    if assets.precompiles:
        lines = comment(
            f"Assets: the app has {found}, so imgbuild precompiles them (app.assets, on by "
            "default; docs/config.md): `bin/rails assets:precompile` runs in an image of its own "
            "under the source, keyed on the asset inputs (app.assets.inputs) only, so a Ruby-only "
            "edit does not run it again; a local public/assets is not used." + _node_text(assets),
            "  ",
        )
    else:
        lines = comment(
            f"Assets: the app has {found}, but imgbuild's assets layer turns on by itself only "
            "with bin/rails and app/assets, app/javascript or config/importmap.rb. To precompile "
            "in an image of its own under the source (app.assets in docs/config.md; its command "
            "is `bin/rails assets:precompile` unless app.assets.command says otherwise), write "
            "`precompile: true` under `assets:`." + _node_text(assets),
            "  ",
        )
    if assets.inputs is not None:
        scanned = [p for p in assets.added_inputs if p != "config/tailwind.config.js"]
        config = (
            ", and config/tailwind.config.js says where it looks"
            if "config/tailwind.config.js" in assets.added_inputs
            else ""
        )
        lines += comment(
            "Tailwind (tailwindcss-rails) writes the CSS for the class names it finds in "
            f"{', '.join(scanned)} and app/javascript (a default input){config}: they are asset "
            "inputs here, or a new class in a view would ship without its CSS (the assets image "
            "would be reused). The other entries are imgbuild's defaults.",
            "  ",
        )
        lines += ["  assets:", "    inputs:"]
        lines += [f"      - {scalar(path)}" for path in assets.inputs]
    return lines


def _node_text(assets: Assets) -> str:
    if not assets.node:
        return ""
    lockfile = assets.js_lockfile
    text = (
        " With package.json, the JavaScript build needs Node: the precompile stage gets Debian's "
        "nodejs"
    )
    if lockfile == "yarn.lock":
        text += " and yarnpkg, and runs `yarn install --frozen-lockfile`"
    elif lockfile == "package-lock.json":
        text += " and npm, and runs `npm ci`"
    elif lockfile is not None:
        text += (
            f", but Debian has no pnpm or bun to install {lockfile}'s packages: set "
            "app.assets.command to install and precompile, and app.assets.packages to what that "
            "needs"
        )
    else:
        text += (
            ", and with no lockfile installs nothing (it uses node_modules as .dockerignore "
            "leaves it): commit a lockfile"
        )
    return text + "; node_modules stays out of the app image."


def _dockerignore(d: Detection) -> list[str]:
    ignore = d.dockerignore
    covered = ", ".join(dockerignore.DEFAULT_PATTERNS)
    if not ignore.suggestions:
        if not ignore.exists:
            return comment(f"No .dockerignore: imgbuild's defaults keep out {covered}.")
        return comment(
            f".dockerignore: with imgbuild's defaults ({covered}) it keeps out what a Rails app "
            "should."
        )
    lead = (
        "The app has no .dockerignore"
        if not ignore.exists
        else "The app's .dockerignore misses entries"
    )
    lines = comment(
        f"{lead}; imgbuild's defaults keep out {covered}. Suggested lines for .dockerignore "
        "(they also change what the app layer's key covers):"
    )
    width = max(len(s.pattern) for s in ignore.suggestions)
    for suggestion in ignore.suggestions:
        text = f"{suggestion.pattern:<{width}}  {suggestion.why}"
        lines += comment(text, hang=" " * (width + 4), lead="  ")
    return lines


def _reasons(rows: Iterable[tuple[str, tuple[str, ...], str]], indent: str) -> list[str]:
    lines = []
    for gem, names, note in rows:
        if names:
            text = f"{gem}: {' '.join(names)}" + (f" ({note})" if note else "")
            lines += comment(text, indent, hang="    ", lead="  ")
    return lines


def _optional(use: packagesmod.GemUse) -> str:
    return f"optional, not added: {use.optional}" if use.optional else ""


def _args_of(gem: str) -> tuple[str, ...]:
    row = packagesmod.BY_GEM.get(gem)
    return tuple(row.build_args) if row else ()


def _gems(count: int) -> str:
    return "1 gem" if count == 1 else f"{count} gems"


def _command_reason(source: str) -> str:
    if source == "config/puma.rb":
        return "Puma with config/puma.rb (which sets its port)."
    if source == "bin/rails":
        return "Rails' own server (bin/rails), on all interfaces."
    return "imgbuild's default command (the app has no bin/rails)."
