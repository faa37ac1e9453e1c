"""The consumer: ``manage.py subscribe`` hands each message to a callback with a ``Payload``."""
