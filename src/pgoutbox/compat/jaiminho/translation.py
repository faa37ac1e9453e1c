"""``settings.JAIMINHO_CONFIG`` (django-jaiminho) translated into ``PGOUTBOX`` keys.

Every key of that library is accepted or refused explicitly; an unknown key is an error. A pure
function of the dict: ``pgoutbox.conf`` validates the values it returns by pgoutbox's own rules,
and an error names both keys (``SOURCES`` says which key each one came from).

=========================  ==================================================================
JAIMINHO_CONFIG key        in pgoutbox
=========================  ==================================================================
PUBLISH_STRATEGY           PUBLISH_STRATEGY (``"publish-on-commit"`` or ``"keep-order"``)
DELETE_AFTER_SEND          DELETE_AFTER_SEND; jaiminho's default ``False`` (keep rows as
                           sent, for event_cleaner) when the key is absent
TIME_TO_DELETE             TIME_TO_DELETE (a timedelta)
DEFAULT_ENCODER            DEFAULT_ENCODER (jaiminho documents it and never reads it; here it
                           encodes every call's arguments)
DEFAULT_CAPTURE_EXCEPTION  CAPTURE_EXCEPTION (given every exception a decorated function
                           raises); absent means none, not jaiminho's sentry_sdk default
NON_RETRYABLE_EXCEPTIONS   NON_RETRYABLE_EXCEPTIONS (dead at once, kept, requeueable); absent
                           means none: jaiminho's defaults (BadSignature, ModuleNotFoundError,
                           AttributeError) were about loading pickles, which pgoutbox never does
PERSIST_ALL_EVENTS         ignored: pgoutbox always writes the row in the caller's transaction
SIGN_EVENTS,               ignored: rows hold an import path and JSON, never code; the relay
VERIFY_EVENTS_SIGNATURE    runs only registered functions, so there is nothing to sign
=========================  ==================================================================
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

SETTING = "JAIMINHO_CONFIG"

_RENAMED = {
    "PUBLISH_STRATEGY": "PUBLISH_STRATEGY",
    "DELETE_AFTER_SEND": "DELETE_AFTER_SEND",
    "TIME_TO_DELETE": "TIME_TO_DELETE",
    "DEFAULT_ENCODER": "DEFAULT_ENCODER",
    "DEFAULT_CAPTURE_EXCEPTION": "CAPTURE_EXCEPTION",
    "NON_RETRYABLE_EXCEPTIONS": "NON_RETRYABLE_EXCEPTIONS",
}
_IGNORED = frozenset({"PERSIST_ALL_EVENTS", "SIGN_EVENTS", "VERIFY_EVENTS_SIGNATURE"})
# jaiminho's defaults that differ from pgoutbox's, applied when the key is absent.
_DEFAULTS = {"DELETE_AFTER_SEND": False}
# The JAIMINHO_CONFIG key each PGOUTBOX key of translate()'s result comes from.
SOURCES = {ours: theirs for theirs, ours in _RENAMED.items()}


def translate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ``PGOUTBOX`` keys ``raw`` (a ``JAIMINHO_CONFIG`` dict) stands for.

    Raises ``ImproperlyConfigured`` naming an unknown key (with the closest known one). The
    values are returned as given: ``pgoutbox.conf`` validates them.
    """
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{SETTING} must be a dict, got {type(raw).__name__}")
    known = sorted({*_RENAMED, *_IGNORED})
    translated: dict[str, Any] = {}
    for key, value in {**_DEFAULTS, **raw}.items():
        if key in _IGNORED:
            continue
        if not isinstance(key, str) or key not in _RENAMED:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ImproperlyConfigured(f"{SETTING}[{key!r}] is not a setting{hint}")
        translated[_RENAMED[key]] = value
    return translated
