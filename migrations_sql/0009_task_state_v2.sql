-- A task's state read the same way everywhere; ordered messages need a stream. Immutable.
--
-- pgoutbox_task_state_v2 is what get_result(), outbox_status and the admin read. Unlike v1, a
-- RUNNING task past its lease is READY only when no transaction holds its call row: the run of
-- a task holds that lock from start to end, so a held row is running (however long it takes,
-- and no other relay can take it over), a free one past its lease is due again (its relay
-- stopped, or leased it and did not start it in time). v1 said READY for both, and
-- get_result() guessed from the leasing relay's session, so the two disagreed. v1 is kept for
-- the processes of the previous release during a rolling deploy; nothing reads it any more.
--
-- The lost attempt shows as an error (lost_error) as soon as the task is READY again, so that
-- a result's attempts and errors agree; the relay that leases it next stores that error.

-- Why an attempt ended without an outcome: the view shows it, the next lease stores it.
CREATE FUNCTION pgoutbox_task_lost_error_v1() RETURNS text
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT 'the relay running it stopped before it finished (killed, crashed or disconnected), '
           'or did not start it before its lease (CALL_LEASE) ran out; it runs again'
$$;

CREATE VIEW pgoutbox_task_state_v2 AS
SELECT r.id, r.event_id, r.task_path, r.backend, r.queue_name, r.priority, r.run_after,
       r.args, r.kwargs,
       CASE s.state WHEN 'dead' THEN 'FAILED' WHEN 'lost' THEN 'READY' ELSE s.state END
           AS status,
       r.enqueued_at, r.started_at, r.last_attempted_at,
       coalesce(r.finished_at, CASE WHEN s.state = 'dead' THEN r.last_attempted_at END)
           AS finished_at,
       r.return_value, r.errors, r.worker_ids,
       CASE s.state WHEN 'dead' THEN e.last_error WHEN 'lost' THEN pgoutbox_task_lost_error_v1()
       END AS lost_error
FROM pgoutbox_task_result r
LEFT JOIN pgoutbox_event e ON e.id = r.event_id
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN r.status IN ('SUCCESSFUL', 'FAILED') THEN r.status
        -- Dead without an outcome of its own (killed its relay every time, unregistered).
        WHEN e.status = 'dead' THEN 'dead'
        -- A row lock sets the row's xmax to the locking transaction, whose id it holds as a
        -- lock of its own until it ends.
        WHEN r.status = 'RUNNING' AND e.available_at <= now() AND NOT EXISTS (
                 SELECT FROM pg_locks l
                 WHERE l.locktype = 'transactionid' AND l.transactionid = e.xmax)
            THEN 'lost'
        ELSE r.status
    END AS state
) s;

COMMENT ON VIEW pgoutbox_task_state_v1 IS
    'Superseded by pgoutbox_task_state_v2 (0009); kept for processes of the previous release.';

-- An ordered message is ordered within its stream; pgoutbox_send and send() refuse one
-- without a stream. A plain INSERT was accepted, and the relay published every such row of
-- every producer as one stream named '', behind one head. Keep-order calls may have no stream
-- (jaiminho's keep-order strategy without one: all such calls in one order), so only messages.
DO $$
DECLARE
    bad bigint[];
BEGIN
    SELECT array_agg(id ORDER BY id) INTO bad
    FROM (SELECT id FROM pgoutbox_event
          WHERE ordered AND kind = 'message' AND stream = '' ORDER BY id LIMIT 20) b;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'pgoutbox 0009: pgoutbox_event has ordered messages without a stream '
                        '(ids %, at most 20 shown)', bad
            USING HINT = 'Give them a stream (UPDATE pgoutbox_event SET stream = ... WHERE '
                         'ordered AND kind = ''message'' AND stream = '''') or let a relay '
                         'publish them first, then migrate again.';
    END IF;
END
$$;

ALTER TABLE pgoutbox_event ADD CONSTRAINT pgoutbox_ordered_message_needs_a_stream
    CHECK (NOT (ordered AND kind = 'message' AND stream = ''));
