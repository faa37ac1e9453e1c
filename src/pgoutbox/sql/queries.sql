-- Queries of the producer and the relay engine. Each block starts with "-- name: <name>".

-- name: claim_batch
-- Pending, due rows in id order; rows another relay holds are skipped, never waited for.
-- Keep-order rows are left to claim_ordered.
SELECT id, stream, kind, destination, body_bytes AS body, headers, message_id, attempts,
       function, args
FROM pgoutbox_event
WHERE status = 'pending'
  AND available_at <= now()
  AND NOT ordered
  AND (cardinality(%(streams)s::text[]) = 0 OR stream = ANY(%(streams)s::text[]))
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED

-- name: delete_events
DELETE FROM pgoutbox_event WHERE id = ANY(%(ids)s::bigint[])

-- name: record_failures
-- One attempt more per row (unless its claim counted it), its error, its next due time, and
-- whether it is dead: pgoutbox.policy.dies decided that; this only stores the answer.
UPDATE pgoutbox_event AS e
SET attempts = e.attempts + f.bump::int,
    last_error = f.error,
    available_at = now() + make_interval(secs => f.delay),
    status = CASE WHEN f.dead THEN 'dead' ELSE 'pending' END
FROM unnest(%(ids)s::bigint[], %(errors)s::text[], %(delays)s::float8[],
            %(deads)s::boolean[], %(bumps)s::boolean[])
     AS f(id, error, delay, dead, bump)
WHERE e.id = f.id

-- name: heartbeat
SELECT pg_notification_queue_usage()

-- name: insert_message
INSERT INTO pgoutbox_event (stream, kind, destination, body_bytes, headers, message_id)
VALUES (%(stream)s, 'message', %(destination)s, %(body)s, %(headers)s::jsonb,
        coalesce(%(message_id)s::uuid, gen_random_uuid()))
RETURNING message_id

-- name: notify_mode
-- The listener's own view of pgoutbox.notify (ALTER DATABASE/ROLE ... SET reaches it too).
SELECT coalesce(current_setting('pgoutbox.notify', true), '')

-- name: relay_busy
SELECT pgoutbox_relay_busy_v2()

-- name: relay_idle
SELECT pgoutbox_relay_idle_v2()

-- name: mark_sent
-- DELETE_AFTER_SEND = False: keep the row as 'sent' until event_cleaner removes it.
UPDATE pgoutbox_event SET status = 'sent', sent_at = now(), available_at = now()
WHERE id = ANY(%(ids)s::bigint[])

-- Function events (producer/functions.py). Advisory lock classes: 1885831010 ('pgob') is
-- taken by producers of a keep-order stream, 1885831026 ('pgor') by the relay running it;
-- the second int is hashtext(stream) (a collision only serializes two streams more).

-- name: insert_call
-- publish-on-commit: durable in the caller's transaction, leased so the listener leaves it
-- to the producer's on-commit hook until the lease runs out.
INSERT INTO pgoutbox_event (stream, kind, function, args, available_at)
VALUES (%(stream)s, 'call', %(function)s, %(args)s::jsonb,
        now() + make_interval(secs => %(lease)s))
RETURNING id

-- name: insert_ordered_call
-- keep-order: the stream's producer lock is taken before the id is drawn and held to the end
-- of the transaction, so ids of one stream are drawn in commit order. One statement, so that
-- the lock also holds in autocommit.
WITH stream_lock AS (SELECT pg_advisory_xact_lock(1885831010, hashtext(%(stream)s)))
INSERT INTO pgoutbox_event (stream, kind, function, args, ordered)
SELECT %(stream)s, 'call', %(function)s, %(args)s::jsonb, true FROM stream_lock
RETURNING id

-- name: claim_call
-- The producer's on-commit hook takes its own row unless a relay has it or has tried it.
SELECT id FROM pgoutbox_event
WHERE id = %(id)s AND status = 'pending' AND attempts = 0 AND NOT ordered
FOR UPDATE SKIP LOCKED

-- name: ordered_streams
SELECT DISTINCT stream
FROM pgoutbox_event
WHERE status = 'pending'
  AND ordered
  AND available_at <= now()
  AND (cardinality(%(streams)s::text[]) = 0 OR stream = ANY(%(streams)s::text[]))

-- name: lock_ordered_stream
-- One relay per keep-order stream; the others go on with other streams.
SELECT pg_try_advisory_xact_lock(1885831026, hashtext(%(stream)s))

-- name: claim_ordered
-- The stream's pending rows from its head, in id order, up to the first one not yet due (a
-- failed head waiting for its retry holds back everything behind it).
SELECT id, stream, kind, destination, body_bytes AS body, headers, message_id, attempts,
       function, args
FROM pgoutbox_event
WHERE stream = %(stream)s
  AND status = 'pending'
  AND ordered
  AND id < coalesce(
      (SELECT min(id) FROM pgoutbox_event
       WHERE stream = %(stream)s AND status = 'pending' AND ordered AND available_at > now()),
      9223372036854775807)
ORDER BY id
LIMIT %(limit)s
FOR UPDATE

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
-- The trigger (installed / disabled / missing), the NOTIFY mode this database's sessions get,
-- the NOTIFY queue usage and the relay sessions connected (application_name 'pgoutbox').
SELECT
    (SELECT tgenabled FROM pg_trigger
     WHERE tgrelid = 'pgoutbox_event'::regclass AND tgname = 'pgoutbox_notify_v2') AS trigger,
    coalesce(nullif(current_setting('pgoutbox.notify', true), ''), 'on') AS notify_mode,
    pg_notification_queue_usage() AS notify_queue_usage,
    (SELECT count(*) FROM pg_stat_activity
     WHERE application_name = 'pgoutbox' AND datname = current_database()) AS relay_sessions

-- name: requeue_dead
-- outbox_requeue: dead events back to pending, due now, with a fresh attempt count;
-- last_error is kept as the history of why they died.
UPDATE pgoutbox_event
SET status = 'pending', attempts = 0, available_at = now()
WHERE status = 'dead' AND (%(all)s OR id = ANY(%(ids)s::bigint[]))
RETURNING id
