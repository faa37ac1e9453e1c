"""``django_outbox_pattern.management.commands``: the ``publish`` and ``subscribe`` command
classes, for ``call_command(Command(), ...)``, here pgoutbox's commands of the same names. Not an
app's commands: ``manage.py`` finds them under ``pgoutbox``."""
