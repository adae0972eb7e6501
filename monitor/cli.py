"""The `monitor` command: argv → config → one call per command → exit status.

Exit status (DESIGN §5): 0 success; 1 failure at run time (another MonitorError, or a bug, whose
traceback is then printed); 2 bad usage or configuration (ConfigError). Nothing else exits.
Heavy libraries are imported inside the commands, so `monitor --help` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from monitor import __version__
from monitor import log as logs
from monitor.config import Config, find, load, parse_duration
from monitor.errors import ConfigError, MonitorError

if TYPE_CHECKING:
    from monitor.models import PollResult


class Context:
    """What the group passes to its commands: where the config is, loaded on first use."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = find(config_path)
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load(self.config_path)
        return self._config


pass_ctx = click.make_pass_decorator(Context)


def _duration(text: str) -> Any:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="The configuration file [default: $MONITOR_CONFIG, else ./monitor.toml].",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="Log events at this level and above, to stderr (`run` logs info by default).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One key=value line per event, or one JSON object per event.",
)
@click.version_option(__version__, prog_name="press-monitor")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str, log_format: str) -> None:
    """Tell me when one of my sources publishes on one of my topics.

    \b
    Start with:
      monitor init my-monitor && cd my-monitor
      monitor poll --once
      monitor subscribers add me@example.org --topics "Human rights"
      monitor run
    """
    source = ctx.get_parameter_source("log_level")
    level = log_level
    if ctx.invoked_subcommand == "run" and source is click.core.ParameterSource.DEFAULT:
        level = "info"
    logs.setup(getattr(logging, level.upper()), log_format)
    ctx.obj = Context(config_path)


# -- init, run, demo ------------------------------------------------------------------------


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Overwrite an existing monitor.toml and starter files.")
def init(directory: Path, force: bool) -> int:
    """Write a starter monitor.toml, rules/ and templates/ into DIRECTORY.

    \b
    Example:
      monitor init ~/press-monitor
    """
    from monitor import admin

    written = admin.init_project(directory, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: cd {directory} && monitor poll --once")
    return 0


@cli.command()
@click.option(
    "--role",
    type=click.Choice(["all", "scheduler", "worker", "web"]),
    default="all",
    show_default=True,
    help="all: everything in this process. scheduler: queue polls and digests; worker: run "
    "them (start any number); web: the pages. Roles other than all need a PostgreSQL "
    "[store] url.",
)
@pass_ctx
def run(ctx: Context, role: str) -> int:
    """Run the daemon: poll sources, send digests and alerts, serve feeds, until stopped.

    Stops cleanly on SIGINT or SIGTERM, draining in-flight work for at most
    [monitor] shutdown_timeout. With a PostgreSQL store the work can be split over
    processes and machines: one scheduler, any number of workers, one web.

    \b
    Example:
      monitor --config /srv/monitor/monitor.toml run
      monitor run --role worker
    """
    from monitor import workers

    return workers.run(ctx.config, cast("workers.Role", role))


@cli.command()
@click.option("--keep", is_flag=True, help="Keep serving the sample site until Ctrl-C.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the demo installation [default: a new temporary directory].",
)
def demo(keep: bool, directory: Path | None) -> int:
    """Run the whole pipeline offline on a bundled sample site, and say where to look.

    \b
    Example:
      monitor demo
    """
    from monitor.demo import run_demo

    return run_demo(directory, keep=keep, echo=click.echo)


# -- poll, sources, extract -------------------------------------------------------------------


@cli.command()
@click.option("--once", is_flag=True, help="Poll once in the foreground (required).")
@click.option("--source", "names", multiple=True, metavar="NAME", help="Only this source.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (last line).")
@pass_ctx
def poll(ctx: Context, once: bool, names: tuple[str, ...], as_json: bool) -> int:
    """Poll every source (or the named ones) once, with progress and a summary.

    Exit status 1 when any source failed (after all the others were polled).

    \b
    Example:
      monitor poll --once --source "EU Delegation to Kazakhstan" --json
    """
    from monitor import admin

    if not once:
        raise click.UsageError("use `monitor poll --once`; `monitor run` polls on schedule")
    config = ctx.config
    sources = [config.source(name) for name in names] if names else list(config.sources)
    if not sources:
        raise ConfigError(str(config.path), "no [[source]] configured")
    results = admin.poll_once(config, sources, progress=_is_terminal() and not as_json)
    summary = admin.poll_summary(results)
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        _print_poll_summary(results, summary)
    return 1 if summary["sources_failed"] else 0


def _print_poll_summary(results: list[PollResult], summary: dict[str, Any]) -> None:
    for result in results:
        if result.status == "error":
            click.echo(f"failed: {result.error}", err=True)
    click.echo(
        f"{summary['sources_ok']} sources ok, {summary['sources_failed']} failed; "
        f"{summary['new_items']} new items, {summary['new_articles']} new articles, "
        f"{summary['matches']} matches"
    )
    for topic, count in sorted(summary["topics"].items()):
        click.echo(f"  {topic}: {count}")


@cli.group(invoke_without_command=True)
@click.pass_context
def sources(ctx: click.Context) -> None:
    """Show each source's health, or check a URL before adding it.

    \b
    Example:
      monitor sources
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(sources_list)


@sources.command("list")
@pass_ctx
def sources_list(ctx: Context) -> int:
    """List each source: last success, last error, items seen, next poll.

    \b
    Example:
      monitor sources list
    """
    from monitor import admin

    admin.print_sources(ctx.config)
    return 0


@sources.command("check")
@click.argument("url")
@pass_ctx
def sources_check(ctx: Context, url: str) -> int:
    """Fetch URL, say what kind of source it is and list the items it would yield.

    \b
    Example:
      monitor sources check https://www.europarl.europa.eu/rss/doc/press-releases/en.xml
    """
    from monitor import admin

    settings = ctx.config.monitor if ctx.config_path.exists() else None
    admin.check_source(url, settings)
    return 0


@cli.command()
@click.argument("target", metavar="URL-or-FILE")
@click.option("--url", help="The page's address, when TARGET is a file.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print title, text, published, author, language, url as JSON.",
)
@pass_ctx
def extract(ctx: Context, target: str, url: str | None, as_json: bool) -> int:
    """Print the cleaned article of a page: what the pipeline would store and match.

    \b
    Example:
      monitor extract https://example.org/news/1.html --json
      monitor extract saved.html --url https://example.org/news/1.html
    """
    from monitor import admin

    settings = ctx.config.monitor if ctx.config_path.exists() else None
    article = admin.extract_target(target, url, settings)
    click.echo(admin.format_article(article, as_json=as_json))
    return 0


# -- rules ------------------------------------------------------------------------------------


@cli.group()
def rules() -> None:
    """Check rule files, and try queries on stored articles."""


@rules.command("check")
@pass_ctx
def rules_check(ctx: Context) -> int:
    """Validate every rule file; print each error with file:line:col.

    \b
    Example:
      monitor rules check
    """
    from monitor import match

    ruleset = match.load_rules(ctx.config.monitor.rules_dir)
    for error in ruleset.errors:
        click.echo(str(error), err=True)
    for warning in getattr(ruleset, "warnings", ()):
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"{len(ruleset.rules)} rules on {len(ruleset.topics)} topics, {len(ruleset.errors)} errors"
    )
    return 2 if ruleset.errors else 0


@rules.command("test")
@click.argument("query", metavar="QUERY-or-RULE-ID")
@click.option("--since", default="30d", show_default=True, help="How far back to look.")
@click.option("--limit", default=20, show_default=True, help="Hits to show.")
@click.option(
    "--backfill",
    is_flag=True,
    help="Store the rule's new matches (a rule id only): in the next digest and the feeds,"
    " never alerted; articles already on its topic are skipped. Safe while `monitor run` runs.",
)
@pass_ctx
def rules_test(ctx: Context, query: str, since: str, limit: int, backfill: bool) -> int:
    """Run a query (or a rule by its id) on stored articles and show the hits, highlighted.

    \b
    Example:
      monitor rules test '"death penalty" AND Kazakhstan' --since 90d
      monitor rules test human-rights-kz
      monitor rules test human-rights-kz --since 14d --backfill
    """
    from datetime import UTC, datetime

    from monitor import ruletest

    now = datetime.now(UTC)
    ruletest.run(ctx.config, query, _duration(since), limit, now, backfill=backfill)
    return 0


# -- digests and subscribers --------------------------------------------------------------------


@cli.group()
def digest() -> None:
    """Send or preview digests."""


@digest.command("send")
@click.option("--digest", "name", metavar="NAME", help="Which [[digest]] [default: the first].")
@click.option("--now", is_flag=True, help="Send now rather than at its time (required).")
@pass_ctx
def digest_send(ctx: Context, name: str | None, now: bool) -> int:
    """Send the digest to its subscribers now (only to those with something new).

    \b
    Example:
      monitor digest send --digest daily --now
    """
    from monitor import admin

    if not now:
        raise click.UsageError(
            "add --now to send outside the schedule; `monitor run` sends on time"
        )
    chosen = ctx.config.digest(name)
    result = admin.send_digest_now(ctx.config, chosen)
    posts = f"; channels: {result.posted} posted, {result.post_failed} failed"
    click.echo(
        f"digest {result.digest}: {result.sent} sent, {result.failed} failed,"
        f" {result.empty} with nothing new{posts if chosen.channels else ''}"
    )
    for error in result.errors:
        click.echo(f"failed: {error}", err=True)
    return 1 if result.failed or result.post_failed else 0


@digest.command("preview")
@click.option("--digest", "name", metavar="NAME", help="Which [[digest]] [default: the first].")
@click.option("--subscriber", metavar="EMAIL", help="Whose digest [default: every topic].")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the files [default: state/preview/].",
)
@pass_ctx
def digest_preview(ctx: Context, name: str | None, subscriber: str | None, out: Path | None) -> int:
    """Write the digest as HTML and text files, without sending it or marking anything sent.

    \b
    Example:
      monitor digest preview --subscriber me@example.org
    """
    from monitor import admin

    for path in admin.preview_digest(ctx.config, ctx.config.digest(name), subscriber, out):
        click.echo(f"wrote {path}")
    return 0


@cli.group()
def channels() -> None:
    """Check the digests' other channels (Slack, Telegram, webhooks… through apprise)."""


@channels.command("test")
@click.option("--digest", "name", metavar="NAME", help="Only this [[digest]]'s channels.")
@pass_ctx
def channels_test(ctx: Context, name: str | None) -> int:
    """Post a test message to each channel now and say which ones took it.

    Each URL is checked by apprise first, as `monitor run` does at start-up. Nothing is
    recorded: the next digest and alerts are not changed.

    \b
    Example:
      monitor channels test --digest daily
    """
    from monitor.notify.channels import try_channels

    digest = ctx.config.digest(name).name if name is not None else None
    results = try_channels(ctx.config, digest)
    if not results:
        click.echo("no channels: add channels = [...] to a [[digest]] in monitor.toml")
    for channel, error in results:
        click.echo(f"{channel.digest}: {channel.label}: {error or 'posted'}")
    return 1 if any(error for _, error in results) else 0


@cli.group()
def subscribers() -> None:
    """Add, remove and list digest subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--digest", "name", metavar="NAME", help="Which [[digest]] [default: the first].")
@click.option("--topics", default="", help="Comma-separated topics [default: every topic].")
@pass_ctx
def subscribers_add(ctx: Context, email: str, name: str | None, topics: str) -> int:
    """Subscribe EMAIL to a digest on some topics (or update an existing subscriber).

    \b
    Example:
      monitor subscribers add press@example.org --topics "Human rights,Media freedom"
    """
    from monitor import admin

    subscriber = admin.add_subscriber(ctx.config, email, ctx.config.digest(name), topics)
    shown = ", ".join(subscriber.topics) or "every topic"
    click.echo(f"{subscriber.email}: digest {subscriber.digest}, {shown}")
    return 0


@subscribers.command("remove")
@click.argument("email")
@pass_ctx
def subscribers_remove(ctx: Context, email: str) -> int:
    """Unsubscribe EMAIL.

    \b
    Example:
      monitor subscribers remove press@example.org
    """
    from monitor import admin

    if not admin.remove_subscriber(ctx.config, email):
        raise MonitorError(email, "not a subscriber")
    click.echo(f"removed {email}")
    return 0


@subscribers.command("list")
@pass_ctx
def subscribers_list(ctx: Context) -> int:
    """List subscribers with their digest and topics.

    \b
    Example:
      monitor subscribers list
    """
    from monitor import admin

    admin.print_subscribers(ctx.config)
    return 0


@cli.command()
@pass_ctx
def status(ctx: Context) -> int:
    """Show one screen: sources, last poll, matches today, last digest, errors.

    With a PostgreSQL store, also every worker (alive, jobs running, last seen) and the
    job queue's depth.

    \b
    Example:
      monitor status
    """
    from monitor import admin

    admin.print_status(ctx.config)
    if ctx.config.store.url:
        from datetime import UTC, datetime

        from monitor import workers

        click.echo("\n".join(workers.status_lines(ctx.config, datetime.now(UTC))))
    return 0


# -- database maintenance (issue #8) ----------------------------------------------------------


@cli.group()
def db() -> None:
    """Back up, compact and check the database."""


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def db_backup(ctx: Context, path: Path) -> int:
    """Copy the database to PATH, safely while `monitor run` is writing.

    \b
    Example:
      monitor db backup /var/backups/monitor-$(date +%F).db
    """
    from monitor import admin

    click.echo(admin.backup_db(ctx.config, path))
    return 0


@db.command("vacuum")
@pass_ctx
def db_vacuum(ctx: Context) -> int:
    """Rebuild the database file to return the space of deleted rows.

    \b
    Example:
      monitor db vacuum
    """
    from monitor import admin

    click.echo(admin.vacuum_db(ctx.config))
    return 0


@db.command("prune")
@pass_ctx
def db_prune(ctx: Context) -> int:
    """Empty the text of articles older than [monitor] keep now (`monitor run` does it daily).

    \b
    Example:
      monitor db prune
    """
    from monitor import admin

    click.echo(admin.prune_db(ctx.config))
    return 0


@db.command("copy")
@click.argument("sqlite_path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("postgres_url")
@click.option("--replace", is_flag=True, help="Delete what the PostgreSQL database holds first.")
@click.option(
    "--password-env",
    metavar="NAME",
    help="Read the database password from this environment variable.",
)
def db_copy(sqlite_path: Path, postgres_url: str, replace: bool, password_env: str | None) -> int:
    """Copy a SQLite database into PostgreSQL, every match, subscriber and delivery.

    Ids are kept, so digest and alert cursors stay valid; the target is refused when it
    holds rows (unless --replace), and the row counts are verified at the end. Stop
    `monitor run` first, then set [store] url in monitor.toml.

    \b
    Example:
      monitor db copy state/monitor.db postgresql://monitor@db.example.org/monitor \\
          --password-env MONITOR_DB_PASSWORD
    """
    from monitor import admin

    click.echo(admin.copy_db(sqlite_path, postgres_url, replace=replace, password_env=password_env))
    return 0


# -- entry point ------------------------------------------------------------------------------


def _is_terminal() -> bool:
    return sys.stderr.isatty()


def main(argv: Sequence[str] | None = None) -> int:
    """Run `monitor` with ``argv`` and return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="monitor", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2
    except ConfigError as exc:
        click.echo(f"error: {exc}" if "\n" not in str(exc) else str(exc), err=True)
        return 2
    except MonitorError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        return 1
    except Exception:  # a bug: the traceback is the bug report
        traceback.print_exc()
        return 1
    return result if isinstance(result, int) else 0
