"""``cocoa``: the command line (Typer + Rich), wired from one module per idea.

The job commands (``jobs``, ``import``, ``geocode``) talk to the database
through the same JobManager the API uses, or to a server's HTTP API with a
token (``--url``/``--token``, or ``cocoa login``): see :mod:`cocoa.cli.connect`.
Administrative commands are always local. Errors print one clear line and
exit non-zero.

* :mod:`cocoa.cli.admin_commands` - ``db``, ``user``, ``token``, ``quickstart``
* :mod:`cocoa.cli.process_commands` - ``serve``, ``worker``
* :mod:`cocoa.cli.jobs_commands` - ``jobs …``
* :mod:`cocoa.cli.import_commands` - ``import …``, ``geocode``
* :mod:`cocoa.cli.samples_command` - ``samples``
* :mod:`cocoa.cli.connect` - ``login``, ``logout``
"""

from __future__ import annotations

import typer

from cocoa.cli import admin_commands, connect, import_commands, jobs_commands, process_commands, samples_command

app = typer.Typer(help="Cocoa Canvas background jobs.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(admin_commands.db_app, name="db")
app.add_typer(admin_commands.user_app, name="user")
app.add_typer(admin_commands.token_app, name="token")
app.add_typer(jobs_commands.jobs_app, name="jobs")
app.add_typer(import_commands.import_app, name="import")
app.command("samples")(samples_command.samples)
app.command("quickstart")(admin_commands.quickstart)
app.command("serve")(process_commands.serve)
app.command("worker")(process_commands.worker_command)
app.command("geocode")(import_commands.geocode)
app.command("login")(connect.login)
app.command("logout")(connect.logout)


if __name__ == "__main__":
    app()
