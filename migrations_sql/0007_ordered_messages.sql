-- Ordered message streams from plain SQL: pgoutbox_send(..., ordered => true). Immutable.
--
-- The pgoutbox_send overloads gain a fifth parameter, ordered (default false). The four-
-- parameter ones are dropped, not kept beside them: a call with the defaults would match both.
-- Calls written for 0004 (two to four arguments, positional or named) still resolve.
--
-- pgoutbox_send_v2 writes an ordered message as Django's send(..., ordered=True) does: it takes
-- the stream's producer lock (the advisory lock insert_ordered_message takes) before the id is
-- drawn, held to the end of the transaction, so ids of one stream are drawn in commit order;
-- then it NOTIFYs pgoutbox_ordered (unless pgoutbox.notify is off) so listeners run their
-- ordered claim. Unlike the Python producer, two SQL transactions writing two ordered streams
-- in opposite orders end in PostgreSQL's "deadlock detected" for one of them (rolled back,
-- nothing half-written), not in KeepOrderConflict. A plain INSERT with ordered = true is
-- published in order too, but takes no lock: its ids follow insert order, not commit order.

CREATE FUNCTION pgoutbox_send_v2(
    destination text, body bytea, headers jsonb, stream text, content_type text, ordered boolean
) RETURNS uuid
    LANGUAGE plpgsql
AS $$
DECLARE
    sent uuid;
BEGIN
    IF ordered IS NULL THEN
        RAISE EXCEPTION 'pgoutbox_send: ordered must be true or false, got NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT ordered THEN
        RETURN pgoutbox_send_v1(destination, body, headers, stream, content_type);
    END IF;
    IF stream IS NULL OR stream = '' THEN
        RAISE EXCEPTION 'pgoutbox_send: ordered => true needs a stream (messages are ordered within a stream)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(1885831010, hashtext(stream));
    sent := pgoutbox_send_v1(destination, body, headers, stream, content_type);
    -- Not yet committed, so no relay has seen it unordered.
    UPDATE pgoutbox_event SET ordered = true WHERE message_id = sent;
    IF coalesce(current_setting('pgoutbox.notify', true), '') <> 'off' THEN
        PERFORM pg_notify('pgoutbox_ordered', stream);
    END IF;
    RETURN sent;
END
$$;

DROP FUNCTION pgoutbox_send(text, text, jsonb, text);
DROP FUNCTION pgoutbox_send(text, jsonb, jsonb, text);
DROP FUNCTION pgoutbox_send(text, bytea, jsonb, text);

CREATE FUNCTION pgoutbox_send(
    destination text, body text, headers jsonb DEFAULT '{}', stream text DEFAULT '',
    ordered boolean DEFAULT false
) RETURNS uuid
    LANGUAGE sql
AS $$
    SELECT pgoutbox_send_v2(destination, convert_to(body, 'UTF8'), headers, stream,
                            'text/plain;charset=utf-8', ordered)
$$;

CREATE FUNCTION pgoutbox_send(
    destination text, body jsonb, headers jsonb DEFAULT '{}', stream text DEFAULT '',
    ordered boolean DEFAULT false
) RETURNS uuid
    LANGUAGE sql
AS $$
    SELECT pgoutbox_send_v2(destination, convert_to(body::text, 'UTF8'), headers, stream,
                            'application/json', ordered)
$$;

CREATE FUNCTION pgoutbox_send(
    destination text, body bytea, headers jsonb DEFAULT '{}', stream text DEFAULT '',
    ordered boolean DEFAULT false
) RETURNS uuid
    LANGUAGE sql
AS $$
    SELECT pgoutbox_send_v2(destination, body, headers, stream, 'application/octet-stream',
                            ordered)
$$;

COMMENT ON FUNCTION pgoutbox_send_v2(text, bytea, jsonb, text, text, boolean)
    IS 'pgoutbox sha256:05095558d83dc9f0b7de13470777ca81bc7ad695502a463318a684abf2625f6b';
