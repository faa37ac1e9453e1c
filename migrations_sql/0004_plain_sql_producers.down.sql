-- Reverses 0004_plain_sql_producers.sql: body is the bytea column again.
DROP FUNCTION IF EXISTS pgoutbox_send(text, bytea, jsonb, text);
DROP FUNCTION IF EXISTS pgoutbox_send(text, jsonb, jsonb, text);
DROP FUNCTION IF EXISTS pgoutbox_send(text, text, jsonb, text);
DROP FUNCTION IF EXISTS pgoutbox_send_v1(text, bytea, jsonb, text, text);
DROP TRIGGER IF EXISTS pgoutbox_body_v1 ON pgoutbox_event;
DROP FUNCTION IF EXISTS pgoutbox_body_v1();
ALTER TABLE pgoutbox_event DROP COLUMN body;
ALTER TABLE pgoutbox_event RENAME COLUMN body_bytes TO body;
