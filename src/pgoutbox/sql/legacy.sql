-- Queries of manage.py outbox_import_legacy: the tables of the libraries pgoutbox replaces.
-- Their names are those libraries' fixed ones (django-outbox-pattern's "published" and
-- "received", django-jaiminho's "jaiminho_event").

-- name: table_exists
SELECT to_regclass(%(table)s) IS NOT NULL

-- name: published_counts
-- status: django-outbox-pattern's StatusChoice (FAILED = -1, SCHEDULE = 1, SUCCEEDED = 2).
SELECT count(*) FILTER (WHERE status = 1),
       count(*) FILTER (WHERE status = 1 AND expires_at < now()),
       count(*) FILTER (WHERE status = -1)
FROM published

-- name: published_bad_destinations
-- pgoutbox's relay dead-letters a destination not starting with '/': refuse to move those.
SELECT DISTINCT destination FROM published
WHERE status = 1 AND (destination IS NULL OR destination !~ '^/')
ORDER BY destination
LIMIT 10

-- name: move_published
-- Pending rows become pgoutbox events with the same message id (their dop-msg-id), the body
-- as the JSON text django-outbox-pattern would have sent, and their stored dop-* headers. The
-- DELETE waits for a publisher still holding a row and skips the row if it was sent meanwhile.
WITH moved AS (
    DELETE FROM published WHERE status = 1
    RETURNING id, destination, body, headers, added
)
INSERT INTO pgoutbox_event (destination, body_bytes, headers, message_id, created_at)
SELECT destination, convert_to(body::text, 'UTF8'),
       jsonb_build_object('content-type', 'application/json') || coalesce(headers, '{}'),
       id, added
FROM moved
ORDER BY added, id
ON CONFLICT (message_id) DO NOTHING
RETURNING message_id

-- name: inbox_columns
-- pgoutbox_received's columns as they are now (later migrations may add some), with whether
-- an INSERT must give each.
SELECT column_name::text,
       is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO' AS required
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = 'pgoutbox_received'
ORDER BY ordinal_position

-- name: received_rows
-- django-outbox-pattern's inbox: msg_id is the id its consumer deduplicated on.
SELECT msg_id, coalesce(headers, '{}'::jsonb)::text, coalesce(headers->>'destination', ''),
       coalesce(body::text, ''), status = -1, added
FROM received
WHERE msg_id IS NOT NULL
ORDER BY added, id

-- name: jaiminho_pending
SELECT coalesce(stream, ''), coalesce(strategy, ''), count(*), min(created_at)
FROM jaiminho_event
WHERE sent_at IS NULL
GROUP BY 1, 2
ORDER BY 1, 2
