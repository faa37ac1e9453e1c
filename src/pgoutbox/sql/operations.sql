-- Queries of operators' tools: the admin, system checks, health and metrics.
-- Each block starts with "-- name: <name>".

-- name: estimated_rows
-- The planner's row count of a table (-1 before its first ANALYZE): no scan, for the admin's
-- paginator on a big table.
SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%(table)s)

-- name: event_streams
-- Streams that have pending or dead events, found by skipping through the partial indexes on
-- (stream, id) one stream at a time: a few index probes per stream, never a table scan.
WITH RECURSIVE pending (stream, n) AS (
    (SELECT stream, 1 FROM pgoutbox_event WHERE status = 'pending' ORDER BY stream LIMIT 1)
    UNION ALL
    SELECT (SELECT e.stream FROM pgoutbox_event AS e
            WHERE e.status = 'pending' AND e.stream > p.stream
            ORDER BY e.stream LIMIT 1), p.n + 1
    FROM pending AS p
    WHERE p.stream IS NOT NULL AND p.n < %(limit)s
), dead (stream, n) AS (
    (SELECT stream, 1 FROM pgoutbox_event WHERE status = 'dead' ORDER BY stream LIMIT 1)
    UNION ALL
    SELECT (SELECT e.stream FROM pgoutbox_event AS e
            WHERE e.status = 'dead' AND e.stream > d.stream
            ORDER BY e.stream LIMIT 1), d.n + 1
    FROM dead AS d
    WHERE d.stream IS NOT NULL AND d.n < %(limit)s
)
SELECT stream FROM pending WHERE stream IS NOT NULL
UNION
SELECT stream FROM dead WHERE stream IS NOT NULL
ORDER BY stream
LIMIT %(limit)s

-- name: purge_dead
-- The admin's purge: delete the given events if they are (still) dead. A Django task among
-- them that died without recording its outcome (its relay lost it) was FAILED only through
-- its dead event: its result is made FAILED itself, with the event's last error, so that it
-- neither shows unfinished again nor escapes TASK_RESULT_RETENTION.
WITH purged AS (
    DELETE FROM pgoutbox_event
    WHERE status = 'dead' AND id = ANY(%(ids)s::bigint[])
    RETURNING id, last_error
), failed AS (
    UPDATE pgoutbox_task_result AS r
    SET status = 'FAILED',
        finished_at = coalesce(r.last_attempted_at, clock_timestamp()),
        errors = r.errors || jsonb_build_array(jsonb_build_object(
            'exception_class_path', %(abandoned)s::text,
            'traceback', coalesce(purged.last_error, '')))
    FROM purged
    WHERE r.event_id = purged.id AND r.status NOT IN ('SUCCESSFUL', 'FAILED')
)
SELECT id FROM purged

-- name: schema_triggers
-- pgoutbox's NOTIFY triggers on pgoutbox_event (every version), their state and function.
SELECT t.tgname, t.tgenabled, p.proname
FROM pg_trigger AS t
JOIN pg_proc AS p ON p.oid = t.tgfoid
WHERE t.tgrelid = to_regclass('pgoutbox_event')
  AND NOT t.tgisinternal
  AND left(t.tgname, 17) = 'pgoutbox_notify_v'

-- name: schema_functions
-- pgoutbox's functions as installed: the sha256 of their body and their comment.
SELECT p.proname, encode(sha256(convert_to(p.prosrc, 'UTF8')), 'hex'),
       obj_description(p.oid, 'pg_proc')
FROM pg_proc AS p
WHERE p.proname = ANY(%(names)s::text[]) AND pg_function_is_visible(p.oid)

-- name: pending_call_functions
-- Functions named by pending call rows (W001: is each one registered?).
SELECT function, count(*)
FROM pgoutbox_event
WHERE status = 'pending' AND kind = 'call'
GROUP BY function
ORDER BY function
LIMIT 100

-- name: metrics_gauges
-- Prometheus gauges, read at scrape time: pending events (an index-only count on the partial
-- index), the age of the oldest one by id (one index probe) and the NOTIFY queue usage.
SELECT (SELECT count(*) FROM pgoutbox_event WHERE status = 'pending'),
       coalesce(extract(epoch FROM now() - (
           SELECT created_at FROM pgoutbox_event WHERE status = 'pending' ORDER BY id LIMIT 1
       )), 0),
       pg_notification_queue_usage()

-- pgoutbox.testing: capture_events() and drain(), inside the caller's transaction.

-- name: testing_last_event_id
SELECT coalesce(max(id), 0) FROM pgoutbox_event

-- name: testing_events_after
SELECT id, kind, destination, body_bytes AS body, headers, stream, function, args, message_id,
       status
FROM pgoutbox_event
WHERE id > %(after)s
ORDER BY id

-- name: testing_due_events
-- Due pending rows in id order; a call never tried is due even under its publish-on-commit
-- lease (the producer's after-commit run never comes inside a test's transaction). As for the
-- relay, a keep-order row waits while an earlier row of its stream waits for a retry.
SELECT id, stream, kind, destination, body_bytes AS body, headers, message_id, attempts,
       function, args, ordered
FROM pgoutbox_event AS e
WHERE status = 'pending'
  AND (available_at <= now() OR (kind = 'call' AND attempts = 0))
  AND NOT (ordered AND EXISTS (
      SELECT FROM pgoutbox_event AS head
      WHERE head.stream = e.stream AND head.ordered AND head.status = 'pending'
        AND head.id < e.id AND head.available_at > now()))
ORDER BY id
FOR UPDATE
