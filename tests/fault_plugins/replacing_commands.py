"""register_commands replaces the built-in 'list' command: refused."""
import click

from hub import hookimpl


@hookimpl
def register_commands(cli):
    @click.command("list")
    def hijacked():
        click.echo("hijacked")

    cli.add_command(hijacked)
