"""The functions' bodies are read from the SQL files as PostgreSQL stores them (prosrc)."""

from __future__ import annotations

from pgoutbox import schema


def test_a_body_is_what_stands_between_its_dollar_quotes():
    sql = (
        "CREATE FUNCTION a() RETURNS int LANGUAGE sql AS $$\n    SELECT 1\n$$;\n"
        "CREATE OR REPLACE FUNCTION b(x text) RETURNS text LANGUAGE sql\n"
        "AS $body$ SELECT 'has $$ inside' $body$;"
    )
    assert [(name, body) for name, _, body in schema._FUNCTION.findall(sql)] == [
        ("a", "\n    SELECT 1\n"),
        ("b", " SELECT 'has $$ inside' "),
    ]


def test_every_current_function_is_shipped():
    assert set(schema.shipped_hashes()) == set(schema.CURRENT_FUNCTIONS)
    assert all(len(digest) == 64 for digest in schema.shipped_hashes().values())
