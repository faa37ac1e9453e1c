"""``manage.py subscribe <callback> <destination> [queue_name]`` (django-outbox-pattern's)."""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from pgoutbox import metrics
from pgoutbox.consumer.stopping import stop_on_signals
from pgoutbox.consumer.subscriber import Subscriber


class Command(BaseCommand):
    help = "Consume a STOMP destination, handing each message to a callback(payload)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("callback", help="dotted path to a function taking a Payload")
        parser.add_argument("destination", help="STOMP destination, e.g. /exchange/saga/order.v1")
        parser.add_argument("queue_name", nargs="?", help="default: the destination's last part")
        parser.add_argument("--metrics-port", type=metrics.port_number, help="serve /metrics")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["callback"]
        try:
            callback = import_string(path)
        except ImportError as exc:
            raise CommandError(f"Could not import {path!r}. {type(exc).__name__}: {exc}.") from exc
        if not callable(callback):
            raise CommandError(f"{path!r} is not callable")
        subscriber = Subscriber(callback, options["destination"], options["queue_name"])
        stop_metrics = metrics.serve_consumer_metrics(options["metrics_port"])
        stop = threading.Event()
        stop_on_signals(stop)
        try:
            subscriber.run(stop)
        finally:
            stop_metrics()
