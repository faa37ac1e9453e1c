"""A module no test imports and no setting lists: the relay must never import it because a row
names it. Importing it leaves a trace in the environment."""

import os

os.environ["PGOUTBOX_NEVER_IMPORTED_WAS_IMPORTED"] = "1"


def run(*args: object) -> None:
    os.environ["PGOUTBOX_NEVER_IMPORTED_RAN"] = "1"
