-- pgoutbox schema, version 2: pgoutbox.notify = 'adaptive'. Immutable: a change is a new file.
--
-- NOTIFY makes every inserting commit take a cluster-wide lock held through its WAL flush, which
-- caps concurrent writers. While the listener is draining anyway, a NOTIFY only wakes it for
-- work it is already doing, so in 'adaptive' mode producers skip it then. Two advisory locks
-- (class 1885826936 = 'pgox', in the database's advisory-lock space) carry the protocol:
--
--   (1885826936, 1) "busy": held (session level, exclusive) by a draining listener. Producers
--       test it with a shared try-lock they release at once; never waited for.
--   (1885826936, 2) "in flight": a producer about to skip NOTIFY takes it shared until its
--       transaction ends. The listener gives "busy" up only when it can take this one
--       exclusively, i.e. when no skipping transaction is still open, then drains once more:
--       every skipped row is committed before that drain, so none waits for the poll.
--
-- Locks die with their session: a listener that crashes or disconnects is no longer "busy",
-- and producers NOTIFY again. 'on' (the default) and 'off' behave as in version 1.

CREATE FUNCTION pgoutbox_notify_v2() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    mode text := coalesce(current_setting('pgoutbox.notify', true), '');
    notify_stream text;
BEGIN
    IF mode = 'off' THEN
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
    FOR notify_stream IN SELECT DISTINCT stream FROM pgoutbox_new_rows LOOP
        PERFORM pg_notify(pgoutbox_channel_v1(notify_stream), '');
        PERFORM pg_notify('pgoutbox', notify_stream);
    END LOOP;
    RETURN NULL;
END
$$;

-- The listener's side, called on its LISTEN connection (session-level locks).
CREATE FUNCTION pgoutbox_relay_busy_v2() RETURNS boolean
    LANGUAGE sql
AS $$
    SELECT pg_try_advisory_lock(1885826936, 1)
$$;

-- True when "busy" was given up; false while a producer that skipped NOTIFY is still open.
CREATE FUNCTION pgoutbox_relay_idle_v2() RETURNS boolean
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT pg_try_advisory_lock(1885826936, 2) THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_unlock(1885826936, 1);
    PERFORM pg_advisory_unlock(1885826936, 2);
    RETURN true;
END
$$;

DROP TRIGGER pgoutbox_notify_v1 ON pgoutbox_event;
CREATE TRIGGER pgoutbox_notify_v2
    AFTER INSERT ON pgoutbox_event
    REFERENCING NEW TABLE AS pgoutbox_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pgoutbox_notify_v2();
