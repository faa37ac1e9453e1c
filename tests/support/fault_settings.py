"""Settings for relay subprocesses started by the fault suite.

``tests.settings`` plus two environment variables, so a test can give one process its own
configuration without touching the others:

- ``PGOUTBOX_OVERRIDES``: a JSON object merged over ``PGOUTBOX`` (e.g. ``{"BATCH_SIZE": 25}``);
- ``PGOUTBOX_ROOT_LOG``: a level for the root logger, so third-party loggers (stomp.py,
  psycopg) write to the captured output too.
"""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import LOGGING, PGOUTBOX

PGOUTBOX = {**PGOUTBOX, **json.loads(os.environ.get("PGOUTBOX_OVERRIDES", "{}"))}

if os.environ.get("PGOUTBOX_ROOT_LOG"):
    LOGGING = {
        **LOGGING,
        "root": {"handlers": ["console"], "level": os.environ["PGOUTBOX_ROOT_LOG"]},
        "loggers": {"pgoutbox": {"level": os.environ["PGOUTBOX_ROOT_LOG"]}},
    }
