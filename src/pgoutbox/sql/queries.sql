-- Queries of the producer and the relay engine. Each block starts with "-- name: <name>".

-- name: claim_batch
-- Pending, due rows in id order; rows another relay holds are skipped, never waited for.
SELECT id, stream, kind, destination, body, headers, message_id, attempts
FROM pgoutbox_event
WHERE status = 'pending'
  AND available_at <= now()
  AND (cardinality(%(streams)s::text[]) = 0 OR stream = ANY(%(streams)s::text[]))
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED

-- name: delete_events
DELETE FROM pgoutbox_event WHERE id = ANY(%(ids)s::bigint[])

-- name: record_failures
-- One attempt more per row, its error, its next due time; 'dead' when a row that counts its
-- attempts reaches the maximum.
UPDATE pgoutbox_event AS e
SET attempts = e.attempts + 1,
    last_error = f.error,
    available_at = now() + make_interval(secs => f.delay),
    status = CASE WHEN f.final OR (f.counts AND e.attempts + 1 >= %(max_attempts)s)
                  THEN 'dead' ELSE 'pending' END
FROM unnest(%(ids)s::bigint[], %(errors)s::text[], %(delays)s::float8[],
            %(counts)s::boolean[], %(finals)s::boolean[]) AS f(id, error, delay, counts, final)
WHERE e.id = f.id

-- name: heartbeat
SELECT pg_notification_queue_usage()

-- name: insert_message
INSERT INTO pgoutbox_event (stream, kind, destination, body, headers)
VALUES (%(stream)s, 'message', %(destination)s, %(body)s, %(headers)s::jsonb)
RETURNING message_id

-- name: notify_mode
-- The listener's own view of pgoutbox.notify (ALTER DATABASE/ROLE ... SET reaches it too).
SELECT coalesce(current_setting('pgoutbox.notify', true), '')

-- name: relay_busy
SELECT pgoutbox_relay_busy_v2()

-- name: relay_idle
SELECT pgoutbox_relay_idle_v2()
