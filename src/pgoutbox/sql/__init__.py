"""Named SQL queries (``-- name: x`` blocks of queries.sql) and the schema's migration files.

Python never builds SQL from strings: queries are parameterized, identifiers go through
``psycopg.sql.Identifier``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

_QUERY_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def _parse_queries(text: str) -> dict[str, str]:
    parts = _QUERY_NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@functools.cache
def queries() -> dict[str, str]:
    """Return every named query of this folder's ``.sql`` files, parsed once.

    ``queries.sql`` holds the producer's and the relay's; ``operations.sql`` what operators'
    tools read (admin, checks, metrics). A name defined twice is an error, not a silent override.
    """
    found: dict[str, str] = {}
    for path in sorted(Path(__file__).parent.glob("*.sql")):
        for name, body in _parse_queries(path.read_text(encoding="utf-8")).items():
            if name in found:
                raise ValueError(f"query {name!r} is defined twice (again in {path.name})")
            found[name] = body
    return found


def query(name: str) -> str:
    """Return the SQL of one named query; KeyError names an unknown one."""
    return queries()[name]


def migrations_dir() -> Path:
    """Return the folder of numbered schema files.

    Inside a wheel it is ``pgoutbox/migrations_sql`` (mapped at build time); in a source
    checkout or an editable install it is the repository's top-level ``migrations_sql/``.
    There is one copy in the repository, never two that could drift.
    """
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "migrations_sql", package.parent.parent / "migrations_sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pgoutbox's migrations_sql folder is missing (looked in {package})")


def migration_sql(filename: str) -> str:
    """Return the text of one schema file, e.g. ``0001_initial.sql``."""
    return (migrations_dir() / filename).read_text(encoding="utf-8")
