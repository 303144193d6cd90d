"""The `mentorbot` command. Each module of this package is one room of it, thin over the
library functions it calls; this one assembles them, once, in one place.

    run     run, demo, chat                       (bot.app, bot.demo, bot.console)
    admin   keys, programme, dyad, invite         (storage)
    programmes  pair, erase; invite list|revoke|reissue, programme settings (bot.programme_admin)
    ops     backup, restore, doctor, serve-webhook, migrate-store (bot.ops, bot.webhook)
    report  report evaluator|coordinator, code, recode (reports)
    export  export                                (reports.export.run)
    docs    diagrams                              (conversations.diagrams)
"""

from __future__ import annotations

import click

from bot.cli import admin, docs, export, ops, programmes, report
from bot.cli import run as running
from storage.private import restrict_umask


@click.group(invoke_without_command=True)
@click.version_option(package_name="mentorbot")
@click.pass_context
def main(ctx: click.Context) -> None:
    """mentorbot: structured mentoring reflections over Telegram, with realist reporting."""
    # Before anything is created: databases, reports, exports and backups hold personal data.
    restrict_umask()
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for _command in (
    running.run_cmd, running.demo_cmd, running.chat_cmd,
    *admin.GROUPS, programmes.pair_group, programmes.erase_cmd,
    ops.backup_cmd, ops.restore_cmd, ops.doctor_cmd, ops.serve_webhook_cmd,
    ops.migrate_store_cmd,
    report.report_group, report.code_cmd, report.recode_cmd,
    export.export_cmd,
    docs.diagrams_cmd,
):
    main.add_command(_command)

__all__ = ["main"]
