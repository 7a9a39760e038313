"""register_commands adds a command, then raises: the command must not appear."""
import click

from hub import hookimpl


@hookimpl
def register_commands(cli):
    @click.command("fault-hello")
    def hello():
        click.echo("hello")

    cli.add_command(hello)
    raise RuntimeError("commands exploded halfway")
