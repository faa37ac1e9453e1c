-- pgoutbox schema, version 9: the statement trigger wakes listeners for message rows only.
-- Immutable: a change is a new file.
--
-- The message lane never claims calls (registered functions, Django tasks): keep-order calls and
-- tasks NOTIFY pgoutbox_calls themselves, which wakes the calls lane, and other calls are run by
-- their producer after COMMIT (a relay takes one over at a poll, after its lease). Version 2
-- also notified the catch-all and stream channels for call rows, so every enqueued task made
-- each listener run a message claim that could find nothing, beside the calls lane starting
-- the task. Version 3 notifies the streams of the statement's message rows only; a statement
-- that inserts calls only sends nothing and takes no part in adaptive NOTIFY's protocol (its
-- rows are not the message lane's to drain). Everything else is version 2's.

CREATE FUNCTION pgoutbox_notify_v3() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    mode text := coalesce(current_setting('pgoutbox.notify', true), '');
    notify_stream text;
BEGIN
    IF mode = 'off' OR NOT EXISTS (SELECT FROM pgoutbox_new_rows WHERE kind <> 'call') THEN
        RETURN NULL;
    END IF;
    IF mode = 'adaptive' AND NOT pg_try_advisory_lock_shared(1885826936, 1) THEN
        -- The listener is busy. Stay "in flight" until commit (this waits only while the
        -- listener is switching to idle), then look again: it may have just gone idle.
        PERFORM pg_advisory_xact_lock_shared(1885826936, 2);
        IF NOT pg_try_advisory_lock_shared(1885826936, 1) THEN
            RETURN NULL;
        END IF;
    END IF;
    IF mode = 'adaptive' THEN
        PERFORM pg_advisory_unlock_shared(1885826936, 1);
    END IF;
    FOR notify_stream IN SELECT DISTINCT stream FROM pgoutbox_new_rows WHERE kind <> 'call' LOOP
        PERFORM pg_notify(pgoutbox_channel_v1(notify_stream), '');
        PERFORM pg_notify('pgoutbox', notify_stream);
    END LOOP;
    RETURN NULL;
END
$$;

DROP TRIGGER pgoutbox_notify_v2 ON pgoutbox_event;
CREATE TRIGGER pgoutbox_notify_v3
    AFTER INSERT ON pgoutbox_event
    REFERENCING NEW TABLE AS pgoutbox_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pgoutbox_notify_v3();

-- See 0006_operations.sql: the body's sha256, for the system checks and outbox_status.
COMMENT ON FUNCTION pgoutbox_notify_v3()
    IS 'pgoutbox sha256:34b42e46e636fd20ba6d803c7c72c6a65cef69b7c986bb4d6f85d37c92a65c5d';
