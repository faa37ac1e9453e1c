"""``jaiminho.management.commands``: the command classes jaiminho's README passes to
``call_command`` (``call_command(events_relay.Command(), run_in_loop=True)``), here pgoutbox's
commands of the same names. Not an app's commands: ``manage.py`` finds them under ``pgoutbox``."""
