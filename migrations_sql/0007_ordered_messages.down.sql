-- Reverses 0007_ordered_messages.sql: the four-parameter pgoutbox_send overloads of 0004.
DROP FUNCTION IF EXISTS pgoutbox_send(text, bytea, jsonb, text, boolean);
DROP FUNCTION IF EXISTS pgoutbox_send(text, jsonb, jsonb, text, boolean);
DROP FUNCTION IF EXISTS pgoutbox_send(text, text, jsonb, text, boolean);
DROP FUNCTION IF EXISTS pgoutbox_send_v2(text, bytea, jsonb, text, text, boolean);

CREATE FUNCTION pgoutbox_send(
    destination text, body text, headers jsonb DEFAULT '{}', stream text DEFAULT ''
) RETURNS uuid
    LANGUAGE sql
AS $$
    SELECT pgoutbox_send_v1(destination, convert_to(body, 'UTF8'), headers, stream,
                            'text/plain;charset=utf-8')
$$;

CREATE FUNCTION pgoutbox_send(
    destination text, body jsonb, headers jsonb DEFAULT '{}', stream text DEFAULT ''
) RETURNS uuid
    LANGUAGE sql
AS $$
    SELECT pgoutbox_send_v1(destination, convert_to(body::text, 'UTF8'), headers, stream,
                            'application/json')
$$;

CREATE FUNCTION pgoutbox_send(
    destination text, body bytea, headers jsonb DEFAULT '{}', stream text DEFAULT ''
) RETURNS uuid
    LANGUAGE sql
AS $$
    SELECT pgoutbox_send_v1(destination, body, headers, stream, 'application/octet-stream')
$$;
