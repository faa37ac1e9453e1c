-- Queries of the producer and the relay engine. Each block starts with "-- name: <name>".

-- name: prepare_claim_batch
-- The message lane: pending, due messages in id order, up to $2 rows and about $3 bytes of
-- body (at least one row); rows another relay holds are skipped, never
-- waited for. Keep-order rows are left to the ordered claim, calls to the calls lane.
-- "claimed" counts every row locked, so the caller knows whether more are waiting. One scan:
-- the locked rows are read once, sized and counted in the same pass (no join back to the
-- table, no second count). $1: the streams (none: all). Prepared once per session (one plan,
-- as psycopg's own prepared statements give), run by claim_batch.
PREPARE pgoutbox_claim_batch(text[], int, bigint) AS
WITH claimed AS (
    SELECT id, stream, kind, destination, body_bytes, headers, message_id, attempts, function,
           args, created_at, coalesce(octet_length(body_bytes), 0) AS size
    FROM pgoutbox_event
    WHERE status = 'pending'
      AND kind <> 'call'  -- a kind this relay does not know is claimed here and dead-lettered
      AND available_at <= now()
      AND NOT ordered
      AND (cardinality($1) = 0 OR stream = ANY($1))
    ORDER BY id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), sized AS (
    SELECT *, sum(size) OVER (ORDER BY id) - size AS before, count(*) OVER () AS claimed
    FROM claimed
)
SELECT id, stream, kind, destination, body_bytes AS body, headers, message_id, attempts,
       function, args, created_at, claimed
FROM sized
WHERE before < $3
ORDER BY id

-- name: claim_batch
-- The message lane's transaction begins with its claim, in one round trip (bound client-side,
-- sent as one simple query; the session is in autocommit mode, its transactions explicit).
BEGIN; EXECUTE pgoutbox_claim_batch(%(streams)s, %(limit)s, %(max_bytes)s)

-- name: begin_transaction
BEGIN

-- name: delete_events
DELETE FROM pgoutbox_event WHERE id = ANY(%(ids)s::bigint[])

-- name: delete_events_and_commit
-- The message lane's batch end when every row was confirmed: the delete and the COMMIT in one
-- round trip (bound client-side, sent as one simple query; the COMMIT does not run when the
-- DELETE fails).
DELETE FROM pgoutbox_event WHERE id = ANY(%(ids)s::bigint[]); COMMIT

-- name: record_failures
-- One attempt more per row (unless its claim counted it), its error, its next due time, and
-- whether it is dead: pgoutbox.policy.dies decided that; this only stores the answer. Rows
-- another session holds are left alone (after a reconnect, another relay may have them).
UPDATE pgoutbox_event AS e
SET attempts = e.attempts + f.bump::int,
    last_error = f.error,
    available_at = clock_timestamp() + make_interval(secs => f.delay),
    status = CASE WHEN f.dead THEN 'dead' ELSE 'pending' END
FROM unnest(%(ids)s::bigint[], %(errors)s::text[], %(delays)s::float8[],
            %(deads)s::boolean[], %(bumps)s::boolean[])
     AS f(id, error, delay, dead, bump)
WHERE e.id = f.id
  AND e.status = 'pending'
  AND e.id IN (SELECT id FROM pgoutbox_event
               WHERE id = ANY(%(ids)s::bigint[]) FOR UPDATE SKIP LOCKED)
RETURNING e.id

-- name: heartbeat
SELECT pg_notification_queue_usage()

-- name: insert_message
INSERT INTO pgoutbox_event (stream, kind, destination, body_bytes, headers, message_id)
VALUES (%(stream)s, 'message', %(destination)s, %(body)s, %(headers)s::jsonb,
        coalesce(%(message_id)s::uuid, gen_random_uuid()))
RETURNING message_id

-- name: insert_ordered_message
-- send(..., ordered=True): like insert_ordered_call, the stream's producer lock is taken
-- before the id is drawn and held to the end of the transaction (ids in commit order).
WITH stream_lock AS (SELECT pg_advisory_xact_lock(1885831010, hashtext(%(stream)s)))
INSERT INTO pgoutbox_event (stream, kind, destination, body_bytes, headers, message_id, ordered)
SELECT %(stream)s, 'message', %(destination)s, %(body)s, %(headers)s::jsonb,
       coalesce(%(message_id)s::uuid, gen_random_uuid()), true
FROM stream_lock
RETURNING message_id

-- name: notify_ordered
-- An ordered message: wake the relays' ordered claim at COMMIT (unless NOTIFY is off).
SELECT pg_notify('pgoutbox_ordered', %(stream)s)
WHERE coalesce(current_setting('pgoutbox.notify', true), '') <> 'off'

-- name: notify_mode
-- The listener's own view of pgoutbox.notify (ALTER DATABASE/ROLE ... SET reaches it too).
SELECT coalesce(current_setting('pgoutbox.notify', true), '')

-- name: relay_busy
SELECT pgoutbox_relay_busy_v2()

-- name: relay_busy_elsewhere
-- True while another listener holds "busy" (a shared try-lock, released at once).
SELECT CASE WHEN pg_try_advisory_lock_shared(1885826936, 1)
            THEN NOT pg_advisory_unlock_shared(1885826936, 1)
            ELSE true END

-- name: announce_busy
SELECT pg_notify('pgoutbox_busy', '')

-- name: relay_idle
SELECT pgoutbox_relay_idle_v2()

-- name: mark_sent
-- DELETE_AFTER_SEND = False (function events): keep the row as 'sent' until event_cleaner
-- removes it; sent_at is the moment of this statement, not the start of the transaction.
UPDATE pgoutbox_event SET status = 'sent', sent_at = clock_timestamp(), available_at = now()
WHERE id = ANY(%(ids)s::bigint[])

-- Function events (producer/functions.py). Advisory lock classes: 1885831010 ('pgob') is
-- taken by producers of a keep-order stream (calls and messages), 1885831026 ('pgor') by the
-- relay leasing its calls, 1885831021 by the relay publishing its messages;
-- the second int is hashtext(stream) (a collision only serializes two streams more).

-- name: insert_call
-- publish-on-commit: durable in the caller's transaction, leased so the listener leaves it
-- to the producer's on-commit hook until the lease runs out. The lease counts from this
-- statement, not from the start of a transaction that may have been long.
INSERT INTO pgoutbox_event (stream, kind, function, args, headers, available_at)
VALUES (%(stream)s, 'call', %(function)s, %(args)s::jsonb, %(headers)s::jsonb,
        clock_timestamp() + make_interval(secs => %(lease)s))
RETURNING id

-- name: insert_ordered_call
-- keep-order: the stream's producer lock is taken before the id is drawn and held to the end
-- of the transaction, so ids of one stream are drawn in commit order. One statement, so that
-- the lock also holds in autocommit.
WITH stream_lock AS (SELECT pg_advisory_xact_lock(1885831010, hashtext(%(stream)s)))
INSERT INTO pgoutbox_event (stream, kind, function, args, headers, ordered)
SELECT %(stream)s, 'call', %(function)s, %(args)s::jsonb, %(headers)s::jsonb, true
FROM stream_lock
RETURNING id

-- name: notify_calls
-- A keep-order call: wake the relays' calls lanes at COMMIT (unless NOTIFY is off).
SELECT pg_notify('pgoutbox_calls', %(stream)s)
WHERE coalesce(current_setting('pgoutbox.notify', true), '') <> 'off'

-- name: try_lock_ordered_producer
-- producer/ordering.py: the stream's producer lock if free now, and this transaction's id.
SELECT pg_try_advisory_xact_lock(1885831010, hashtext(%(stream)s)), txid_current()

-- name: keep_order_holder
-- producer/ordering.py: the backend holding a keep-order stream's producer lock (its second
-- key, an int4, shows in pg_locks as an unsigned oid), and this one.
SELECT (SELECT min(l.pid) FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 1885831010
          AND l.objsubid = 2
          AND l.objid = ((hashtext(%(stream)s)::bigint + 4294967296) %% 4294967296)::text::oid
          AND l.pid <> pg_backend_pid()),
       pg_backend_pid()

-- name: claim_call
-- The producer's on-commit hook takes its own row unless a relay has it or has tried it.
SELECT id FROM pgoutbox_event
WHERE id = %(id)s AND status = 'pending' AND attempts = 0 AND NOT ordered
FOR UPDATE SKIP LOCKED

-- name: ordered_streams
-- Ordered streams whose head (oldest pending row of the kind asked for: calls for the calls
-- lane, messages for the message lane) is due, oldest head first. Distinct streams are found
-- by skipping through the (stream, id) index one stream at a time, and each head by one index
-- probe, so the cost does not grow with the rows blocked behind a head.
WITH RECURSIVE streams AS (
    (SELECT stream FROM pgoutbox_event
     WHERE status = 'pending' AND ordered ORDER BY stream LIMIT 1)
    UNION ALL
    SELECT (SELECT e.stream FROM pgoutbox_event e
            WHERE e.status = 'pending' AND e.ordered AND e.stream > s.stream
            ORDER BY e.stream LIMIT 1)
    FROM streams s
    WHERE s.stream IS NOT NULL
)
SELECT s.stream
FROM streams s
CROSS JOIN LATERAL (
    SELECT h.id, h.available_at FROM pgoutbox_event h
    WHERE h.stream = s.stream AND h.status = 'pending' AND h.ordered
      AND (h.kind = 'call') = %(calls)s
    ORDER BY h.id LIMIT 1
) head
WHERE s.stream IS NOT NULL
  AND (cardinality(%(streams)s::text[]) = 0 OR s.stream = ANY(%(streams)s::text[]))
  AND head.available_at <= now()
ORDER BY head.id  -- the oldest head first: no stream starves behind busier ones
LIMIT %(limit)s

-- name: lock_ordered_stream
-- One relay per keep-order stream; the others go on with other streams.
SELECT pg_try_advisory_xact_lock(1885831026, hashtext(%(stream)s))

-- name: lock_ordered_messages
-- One relay per ordered message stream, for the length of its batch's transaction (a class
-- of its own: the calls lane leases the stream's calls independently).
SELECT pg_try_advisory_xact_lock(1885831021, hashtext(%(stream)s))

-- name: claim_ordered
-- An ordered stream's pending rows of one kind (calls, or messages and unknown kinds) from its
-- head in id order, with whether each is due. The caller keeps them up to the first one not
-- due, and only if the first is the stream's head (a row another session holds is skipped,
-- so a held head shows as a later first row).
SELECT id, stream, kind, destination, body_bytes AS body, headers, message_id, attempts,
       function, args, created_at,
       available_at <= now() AS due,
       id = (SELECT min(id) FROM pgoutbox_event
             WHERE stream = %(stream)s AND status = 'pending' AND ordered
               AND (kind = 'call') = %(calls)s) AS is_head
FROM pgoutbox_event
WHERE stream = %(stream)s AND status = 'pending' AND ordered AND (kind = 'call') = %(calls)s
  -- Nothing is locked unless the head is due: a head another relay has leased (or is running)
  -- must not see its rows locked, even for a moment, by a relay that will not take them.
  AND (SELECT h.available_at <= now() FROM pgoutbox_event h
       WHERE h.stream = %(stream)s AND h.status = 'pending' AND h.ordered
         AND (h.kind = 'call') = %(calls)s
       ORDER BY h.id LIMIT 1)
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED

-- name: delete_received_before
-- event_cleaner: inbox rows older than DAYS_TO_KEEP_DATA (the window in which a redelivered
-- message id is still recognised).
DELETE FROM pgoutbox_received
WHERE received_at < now() - make_interval(days => %(days)s)

-- name: delete_sent_before
-- event_cleaner: kept 'sent' rows older than TIME_TO_DELETE; never pending or dead ones.
DELETE FROM pgoutbox_event
WHERE status = 'sent' AND sent_at < now() - make_interval(secs => %(seconds)s)

-- name: status_counts
-- outbox_status: events per status; pending split into due now and scheduled later (backoff,
-- publish-on-commit lease); the age of the oldest pending event in seconds.
SELECT
    count(*) FILTER (WHERE status = 'pending' AND available_at <= now()) AS pending_due,
    count(*) FILTER (WHERE status = 'pending' AND available_at > now()) AS pending_later,
    count(*) FILTER (WHERE status = 'dead') AS dead,
    count(*) FILTER (WHERE status = 'sent') AS sent,
    coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')), 0)
        AS oldest_pending_seconds
FROM pgoutbox_event

-- name: status_dead
SELECT id, stream, kind, coalesce(destination, function) AS target, attempts, last_error
FROM pgoutbox_event
WHERE status = 'dead'
ORDER BY id DESC
LIMIT %(limit)s

-- name: status_database
-- The NOTIFY mode this database's sessions get, the NOTIFY queue usage and the relay sessions
-- connected (application_name 'pgoutbox', or 'pgoutbox:<the name the settings give>': see
-- db.relay_application_name); the trigger is pgoutbox.schema's business.
SELECT
    coalesce(nullif(current_setting('pgoutbox.notify', true), ''), 'on') AS notify_mode,
    pg_notification_queue_usage() AS notify_queue_usage,
    (SELECT count(*) FROM pg_stat_activity
     WHERE (application_name = 'pgoutbox' OR starts_with(application_name, 'pgoutbox:'))
       AND datname = current_database()) AS relay_sessions

-- name: requeue_dead
-- outbox_requeue: dead events back to pending, due now, with a fresh attempt count;
-- last_error is kept as the history of why they died.
UPDATE pgoutbox_event
SET status = 'pending', attempts = 0, available_at = now()
WHERE status = 'dead' AND (%(all)s OR id = ANY(%(ids)s::bigint[]))
RETURNING id

-- The calls lane (relay/calls.py). A call is leased in a committed statement (one attempt
-- counted, available_at moved past the lease), then run in a transaction of its own that
-- locks the row only if the lease is still the one taken (the lease time is the token).

-- name: lease_calls
-- Lease calls in one statement: either up to %(limit)s due calls (not keep-order), highest
-- priority first (Django tasks' priority; 0 for other calls), then oldest; or, when %(ids)s
-- is given, exactly those rows (a keep-order stream's run, already locked by this
-- transaction). The Django tasks among them show RUNNING from their lease on, one worker id
-- (this relay session) per attempt, a FAILED one runs again after outbox_requeue: written by
-- the same statement, so a task starts one round trip after its wake-up, not two.
WITH due AS (
    SELECT id FROM pgoutbox_event
    WHERE %(ids)s::bigint[] IS NULL
      AND status = 'pending' AND kind = 'call' AND NOT ordered AND available_at <= now()
      AND (cardinality(%(streams)s::text[]) = 0 OR stream = ANY(%(streams)s::text[]))
    ORDER BY priority DESC, id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT id FROM due
    UNION ALL
    SELECT unnest(%(ids)s::bigint[])
), leased AS (
    UPDATE pgoutbox_event AS e
    SET attempts = e.attempts + 1,
        available_at = clock_timestamp() + make_interval(secs => %(lease)s)
    FROM picked
    WHERE e.id = picked.id
    RETURNING e.id, e.stream, e.kind, e.destination, e.body_bytes AS body, e.headers,
              e.message_id, e.attempts, e.function, e.args, e.available_at AS lease, e.priority
), started AS (
    -- One still RUNNING was lost with its previous lease (no outcome was recorded): that
    -- attempt's error is stored first.
    UPDATE pgoutbox_task_result
    SET status = 'RUNNING',
        errors = CASE WHEN status = 'RUNNING'
                      THEN errors || jsonb_build_array(jsonb_build_object(
                          'exception_class_path', %(abandoned)s::text,
                          'traceback', pgoutbox_task_lost_error_v1()))
                      ELSE errors END,
        started_at = coalesce(started_at, clock_timestamp()),
        last_attempted_at = clock_timestamp(),
        finished_at = NULL,
        worker_ids = worker_ids || jsonb_build_array(
            coalesce(host(inet_client_addr()), 'local') || '/' || pg_backend_pid())
    WHERE event_id IN (SELECT id FROM leased WHERE starts_with(function, %(task_prefix)s))
      AND status <> 'SUCCESSFUL'
    -- What the task's run reads as its result (task_started, its context): as leased, the
    -- columns of task_result_by_event_id.
    RETURNING event_id, id, task_path, backend, queue_name, priority, run_after, args, kwargs,
              status, enqueued_at, started_at, last_attempted_at, finished_at, return_value,
              errors, worker_ids
)
-- The leased row's 12 columns, then its task's result (NULLs for other calls).
SELECT leased.*, started.event_id IS NOT NULL AS is_task, started.id, started.task_path,
       started.backend, started.queue_name, started.priority, started.run_after, started.args,
       started.kwargs, started.status, started.enqueued_at, started.started_at,
       started.last_attempted_at, started.finished_at, started.return_value, started.errors,
       started.worker_ids, NULL
FROM leased LEFT JOIN started ON started.event_id = leased.id

-- name: release_leases
-- Leased calls that were not run (their keep-order head failed first): due again, their
-- attempt given back; a Django task among them READY again, without that attempt's worker id.
WITH released AS (
    UPDATE pgoutbox_event
    SET attempts = greatest(attempts - 1, 0), available_at = now()
    WHERE id = ANY(%(ids)s::bigint[]) AND available_at = ANY(%(leases)s::timestamptz[])
      AND status = 'pending'
    RETURNING id
)
UPDATE pgoutbox_task_result AS r
SET status = 'READY',
    worker_ids = r.worker_ids - -1,
    started_at = CASE WHEN jsonb_array_length(r.worker_ids) > 1 THEN r.started_at END,
    last_attempted_at = CASE WHEN jsonb_array_length(r.worker_ids) > 1
                             THEN r.last_attempted_at END
FROM released
WHERE r.event_id = released.id AND r.status = 'RUNNING'

-- name: postpone_released_call
-- After release_leases in the same transaction (which made it due now(): a row another relay
-- leased since is due later and left alone): due after a delay, with the reason.
UPDATE pgoutbox_event
SET available_at = clock_timestamp() + make_interval(secs => %(delay)s), last_error = %(error)s
WHERE id = %(id)s AND status = 'pending' AND available_at <= now()

-- name: lock_leased_call
-- Run only while the lease is still this relay's: another relay may have taken it over.
SELECT id FROM pgoutbox_event
WHERE id = %(id)s AND status = 'pending' AND available_at = %(lease)s
FOR UPDATE SKIP LOCKED

-- name: configure_relay_session
-- The relay's own sessions: bounded transactions (no server-side timeout of the database or
-- role can kill a batch that waits for the broker), READ COMMITTED whatever the default, and
-- server-side TCP keepalives so a vanished relay host frees its locks within a minute.
SELECT set_config('idle_in_transaction_session_timeout', %(idle_ms)s, false),
       set_config('statement_timeout', %(statement_ms)s, false),
       set_config('default_transaction_isolation', 'read committed', false),
       set_config('tcp_keepalives_idle', '20', false),
       set_config('tcp_keepalives_interval', '5', false),
       set_config('tcp_keepalives_count', '4', false)

-- name: session_settings
-- The session settings a call may change with SET and the next call on the connection (or
-- the call's own bookkeeping) would inherit, one column each, named after the setting: read
-- before the first call on a connection and after each call (constant SQL: as cheap as
-- SELECT 1), set back when they differ (session_authorization first: it resets the role).
SELECT current_setting('session_authorization') AS session_authorization,
       current_setting('role') AS role,
       current_setting('search_path') AS search_path,
       current_setting('statement_timeout') AS statement_timeout,
       current_setting('lock_timeout') AS lock_timeout,
       current_setting('idle_in_transaction_session_timeout')
           AS idle_in_transaction_session_timeout,
       current_setting('default_transaction_isolation') AS default_transaction_isolation,
       current_setting('default_transaction_read_only') AS default_transaction_read_only,
       current_setting('TimeZone') AS "TimeZone",
       current_setting('DateStyle') AS "DateStyle",
       current_setting('IntervalStyle') AS "IntervalStyle",
       current_setting('synchronous_commit') AS synchronous_commit,
       current_setting('work_mem') AS work_mem

-- name: restore_session_settings
-- Those that differ, set back (in order) in the call's transaction; returns the names it set.
SELECT name, set_config(name, value, false)
FROM unnest(%(names)s::text[], %(values)s::text[]) WITH ORDINALITY AS s(name, value, n)
WHERE current_setting(name) IS DISTINCT FROM value
ORDER BY n

-- name: insert_received
-- payload.save(): the consumer's inbox row, in the callback's transaction. No row back means
-- this consumer already recorded the message id (a concurrent insert is waited for first).
INSERT INTO pgoutbox_received
    (consumer, message_id, destination, body, headers, status, processed_at)
VALUES
    (%(consumer)s, %(message_id)s, %(destination)s, %(body)s, %(headers)s::jsonb, %(status)s,
     now())
ON CONFLICT (consumer, message_id) DO NOTHING
RETURNING id, received_at, processed_at
