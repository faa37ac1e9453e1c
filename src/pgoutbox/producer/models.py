"""``@publish([Config(...)])``: a model save writes its events in the same transaction.

The names and the wire format are django-outbox-pattern's, so its users switch by changing
imports: a body ``{"id": pk, **fields}`` (or what the named serializer method returns), the
destination ``destination + "." + version``, and the ``dop-*`` headers. Unlike it, the
decorator wraps the model's own ``save()`` (an override defined on the class still runs,
subclasses do not recurse), a misspelled serializer or field is refused when the class is
decorated, and a body that cannot be encoded raises inside the save's transaction, so the
model row rolls back with it.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from django.core import serializers
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction

from pgoutbox.errors import InvalidEventError, SerializationError
from pgoutbox.producer.encoding import dop_headers
from pgoutbox.producer.send import send
from pgoutbox.validation import destination_error

ModelT = TypeVar("ModelT", bound=type[models.Model])

# On a save() wrapper of @publish: the save() it wraps.
_WRAPPED_SAVE = "_pgoutbox_wrapped_save"


class Config(NamedTuple):
    """One event per save of the decorated model.

    ``destination``: where it goes (a STOMP destination such as ``/topic/orders``).
    ``fields``: the model fields in the body (default: all); ``serializer``: the name of a
    model method returning the body instead (it wins over ``fields``); ``version``: appended
    to the destination as ``destination + "." + version``.
    ``ordered``: publish each instance's events in commit order (an ordered stream, see
    ``send()``); ``stream_field``: the field whose value (as text) names the stream, so models
    can share one (e.g. ``"order_id"`` on order lines, ``"id"`` on orders). Without it an
    ordered event's stream is ``<app_label>.<model_name>:<pk>``.
    """

    destination: str
    fields: list[str] | None = None
    serializer: str | None = None
    version: str | None = None
    ordered: bool = False
    stream_field: str | None = None


def publish(configs: Sequence[Config]) -> Callable[[ModelT], ModelT]:
    """Class decorator: every ``save()`` of the model (insert and update) writes one event
    per ``Config`` in the save's transaction.

    The class's own ``save()`` (or the inherited one) is wrapped, not replaced. Deletes,
    ``bulk_create`` and ``QuerySet.update()`` write no event. Raises ``ImproperlyConfigured``
    at decoration time for a bad destination, an unknown field or a serializer that is not a
    method of the model; ``save()`` raises ``SerializationError`` (a ``TypeError``) for a body
    that cannot be encoded, after which the whole save is rolled back.
    """
    configs = tuple(configs)

    def decorate(cls: ModelT) -> ModelT:
        for config in configs:
            _check_config(cls, config)
        # Decorating the same class again replaces its events: wrap the save the first
        # decoration wrapped, never a wrapper (an inherited wrapper is the parent's, kept).
        own_save = cls.__dict__.get("save")
        original_save = getattr(own_save, _WRAPPED_SAVE, None) or cls.save

        @functools.wraps(original_save)
        def save(self: models.Model, *args: Any, **kwargs: Any) -> None:
            using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
            with transaction.atomic(using=using):
                original_save(self, *args, **kwargs)
                for config in configs:
                    _write_event(self, config, using=self._state.db or using)

        setattr(save, _WRAPPED_SAVE, original_save)
        cls.save = save  # type: ignore[method-assign]
        return cls

    return decorate


def _check_config(cls: type[models.Model], config: Config) -> None:
    name = f"@publish on {cls.__name__}"
    if not isinstance(config, Config):
        raise ImproperlyConfigured(f"{name}: expected Config(...), got {config!r}")
    error = destination_error(final_destination(config))
    if error is not None:
        raise ImproperlyConfigured(f"{name}: {error}")
    if config.serializer is not None and not callable(getattr(cls, config.serializer, None)):
        raise ImproperlyConfigured(
            f"{name}: serializer {config.serializer!r} is not a method of {cls.__name__}"
        )
    if not isinstance(config.ordered, bool):
        raise ImproperlyConfigured(f"{name}: ordered must be a bool, got {config.ordered!r}")
    stream_fields = [config.stream_field] if config.stream_field is not None else []
    for field_name in [*(config.fields or ()), *stream_fields]:
        try:
            cls._meta.get_field(field_name)
        except FieldDoesNotExist as exc:
            raise ImproperlyConfigured(
                f"{name}: field {field_name!r} does not exist on {cls.__name__}"
            ) from exc


def event_stream(instance: models.Model, config: Config) -> str:
    """The stream of the instance's event: the ``stream_field``'s value as text, else
    ``<app_label>.<model_name>:<pk>`` when ordered, else none (``""``).

    Raises ``InvalidEventError`` when the stream field is empty (None or "")."""
    if config.stream_field is None:
        return f"{instance._meta.label_lower}:{instance.pk}" if config.ordered else ""
    field = instance._meta.get_field(config.stream_field)
    value = getattr(instance, getattr(field, "attname", config.stream_field))
    if value is None or value == "":
        raise InvalidEventError(
            f"{type(instance).__name__}.{config.stream_field} is empty: it names the event's "
            f"stream (Config(stream_field={config.stream_field!r}))"
        )
    return str(value)


def final_destination(config: Config) -> str:
    """Return the destination with the version suffix, e.g. ``/topic/orders.v1``."""
    if config.version:
        return f"{config.destination}.{config.version}"
    return config.destination


def model_body(instance: models.Model, config: Config) -> Any:
    """Return the event body: the serializer method's result, or ``{"id": pk, **fields}`` as
    Django's JSON serializer writes the fields (m2m as lists of pks, datetimes ISO 8601)."""
    if config.serializer is not None:
        return getattr(instance, config.serializer)()
    [serialized] = json.loads(serializers.serialize("json", [instance], fields=config.fields))
    return {"id": serialized["pk"], **serialized["fields"]}


def _write_event(instance: models.Model, config: Config, *, using: str) -> None:
    body = model_body(instance, config)
    try:
        text = json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"body of {type(instance).__name__} for {config.destination!r} is not "
            f"JSON-serializable: {exc}"
        ) from exc
    message_id = uuid.uuid4()
    destination = final_destination(config)
    send(
        destination,
        text,
        headers={"content-type": "application/json", **dop_headers(message_id, destination)},
        using=using,
        message_id=message_id,
        stream=event_stream(instance, config),
        ordered=config.ordered,
    )
