-- Producers outside Django: psql, another service, a trigger on the application's own table.
-- Immutable: a change is a new numbered file.
--
-- body was bytea, so text and jsonb could not be inserted into it ("column body is of type
-- bytea but expression is of type text"). PostgreSQL coerces an INSERT's values to the
-- column's type before any trigger runs, and only a text column takes text and jsonb (through
-- their text form). So the bytes move to body_bytes, which Django's producer writes and the
-- relay reads, and body becomes a text column for other producers: a row trigger, fired only
-- when body is given, turns it into body_bytes and leaves body NULL in every stored row.
--
-- What arrives in body:
--   * text, jsonb, an untyped literal: its UTF-8 text;
--   * bytea (e.g. psycopg's bytes): PostgreSQL hands it over as its text form '\x<hex>', which
--     is decoded back to the same bytes. An untyped literal of that form ('\x4142') meant
--     those bytes before this migration and still does. Text that merely looks like that, or
--     bytea under bytea_output = 'escape', must go through pgoutbox_send() or body_bytes.
-- body_bytes can be written directly and is used as is when body is not given.

ALTER TABLE pgoutbox_event RENAME COLUMN body TO body_bytes;
ALTER TABLE pgoutbox_event ADD COLUMN body text;

CREATE FUNCTION pgoutbox_body_v1() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.body ~ '^\\x([0-9a-fA-F]{2})*$' THEN
        NEW.body_bytes := decode(substr(NEW.body, 3), 'hex');
    ELSE
        NEW.body_bytes := convert_to(NEW.body, 'UTF8');
    END IF;
    NEW.body := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER pgoutbox_body_v1
    BEFORE INSERT OR UPDATE OF body ON pgoutbox_event
    FOR EACH ROW WHEN (NEW.body IS NOT NULL) EXECUTE FUNCTION pgoutbox_body_v1();

-- The message writer behind every pgoutbox_send() overload. Returns the event's message_id
-- (the pgoutbox-message-id header consumers deduplicate on). Raises, writing nothing, for a
-- missing destination, headers that are not an object of strings, or a NULL body or stream.
-- Other rules (reserved headers, MAX_BODY_BYTES) are the relay's: it dead-letters such a row
-- with the reason in last_error.
CREATE FUNCTION pgoutbox_send_v1(
    destination text, body bytea, headers jsonb, stream text, content_type text
) RETURNS uuid
    LANGUAGE plpgsql
AS $$
DECLARE
    sent uuid;
BEGIN
    IF destination IS NULL OR destination !~ '^/' THEN
        RAISE EXCEPTION 'pgoutbox_send: destination must start with ''/'' (e.g. ''/queue/orders''), got %',
            coalesce(quote_literal(destination), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF body IS NULL OR stream IS NULL THEN
        RAISE EXCEPTION 'pgoutbox_send: body and stream must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF headers IS NULL OR jsonb_typeof(headers) <> 'object' OR EXISTS (
        SELECT FROM jsonb_each(headers) h WHERE jsonb_typeof(h.value) <> 'string'
    ) THEN
        RAISE EXCEPTION 'pgoutbox_send: headers must be a JSON object of strings, got %',
            coalesce(headers::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pgoutbox_event (stream, kind, destination, body_bytes, headers)
    VALUES (stream, 'message', destination, body,
            jsonb_build_object('content-type', content_type) || headers)
    RETURNING message_id INTO sent;
    RETURN sent;
END
$$;

-- Public overloads, one per body type; each labels the body with its content type unless
-- headers name one. With an untyped literal, pgoutbox_send('/queue/x', 'hello'), PostgreSQL
-- prefers the text overload (text is the preferred type of the string category).
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

-- The sha256 of each versioned function's body (pgoutbox.schema computes the same from this
-- file): outbox_status and the system checks tell installed from outdated.
COMMENT ON FUNCTION pgoutbox_body_v1()
    IS 'pgoutbox sha256:3e4b5096503684cca14e45f06a38e51d99ba75dde66d65bf1b21621e4904b43e';
COMMENT ON FUNCTION pgoutbox_send_v1(text, bytea, jsonb, text, text)
    IS 'pgoutbox sha256:a86139423ca8d244a5a71e193a215f4e484cc7d204147f93f8e6908bacf47b3c';
