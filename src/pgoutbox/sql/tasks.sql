-- Django Tasks (pgoutbox/tasks.py): a task is a call row plus its result row.

-- name: insert_task
-- enqueue(): the call row and its result row in one statement, in the caller's transaction;
-- the relays' calls lanes are woken at COMMIT (unless NOTIFY is off). A keep-order queue's
-- producer lock is taken before the id is drawn and held to the end of the transaction, as
-- for keep-order calls, so ids of one queue are drawn in commit order.
WITH stream_lock AS (
    SELECT count(*) AS taken
    FROM (SELECT pg_advisory_xact_lock(1885831010, hashtext(%(stream)s)) WHERE %(ordered)s) l
), event AS (
    INSERT INTO pgoutbox_event (stream, kind, function, args, available_at, priority, ordered)
    SELECT %(stream)s, 'call', %(function)s, %(payload)s::jsonb,
           greatest(coalesce(%(run_after)s::timestamptz, now()), now()), %(priority)s,
           %(ordered)s
    FROM stream_lock
    RETURNING id
), result AS (
    INSERT INTO pgoutbox_task_result
        (id, event_id, task_path, backend, queue_name, priority, run_after, args, kwargs)
    SELECT %(id)s, event.id, %(task_path)s, %(backend)s, %(queue_name)s, %(priority)s,
           %(run_after)s::timestamptz, %(args)s::jsonb, %(kwargs)s::jsonb
    FROM event
    RETURNING enqueued_at
)
SELECT result.enqueued_at,
       CASE WHEN coalesce(current_setting('pgoutbox.notify', true), '') <> 'off'
            THEN pg_notify('pgoutbox_calls', %(stream)s) END
FROM result

-- name: task_result_by_id
-- get_result(): the task's state as the view gives it (outbox_status and the admin read the
-- same), with the error of an attempt its relay lost.
SELECT id, task_path, backend, queue_name, priority, run_after, args, kwargs, status,
       enqueued_at, started_at, last_attempted_at, finished_at, return_value, errors,
       worker_ids, lost_error
FROM pgoutbox_task_state_v2
WHERE id = %(id)s

-- name: task_result_by_event_id
-- In the task's own transaction, which holds its call row: the result as stored is what it
-- is (RUNNING, its attempt counted; FAILED once its death is stored), no relay lost it. Read
-- from the table (planning the view would cost more than the read).
SELECT id, task_path, backend, queue_name, priority, run_after, args, kwargs, status,
       enqueued_at, started_at, last_attempted_at, finished_at, return_value, errors,
       worker_ids, NULL
FROM pgoutbox_task_result
WHERE event_id = %(event_id)s

-- name: task_succeeded
-- In the task's own transaction: committed with its writes and its call row's removal.
UPDATE pgoutbox_task_result
SET status = 'SUCCESSFUL', return_value = %(value)s::jsonb, finished_at = clock_timestamp()
WHERE event_id = %(event_id)s
RETURNING finished_at

-- name: task_failed
-- In the task's own transaction, after its writes were rolled back: one error more, READY
-- again (retried after its backoff) or FAILED (dead).
UPDATE pgoutbox_task_result
SET errors = errors || jsonb_build_array(jsonb_build_object(
        'exception_class_path', %(exception_class_path)s::text,
        'traceback', %(traceback)s::text)),
    status = CASE WHEN %(dead)s THEN 'FAILED' ELSE 'READY' END,
    finished_at = CASE WHEN %(dead)s THEN clock_timestamp() END
WHERE event_id = %(event_id)s

-- name: task_attempts_lost
-- Failures the calls lane recorded on its own connection (the task's transaction was lost, its
-- relays died each time, it cannot run here): its result gets the error too, READY again or
-- FAILED, as after a failed run.
UPDATE pgoutbox_task_result AS r
SET errors = r.errors || jsonb_build_array(jsonb_build_object(
        'exception_class_path', %(abandoned)s::text, 'traceback', f.error)),
    status = CASE WHEN f.dead THEN 'FAILED' ELSE 'READY' END,
    finished_at = CASE WHEN f.dead THEN clock_timestamp() END
FROM unnest(%(ids)s::bigint[], %(errors)s::text[], %(deads)s::boolean[]) AS f(id, error, dead)
WHERE r.event_id = f.id AND r.status = 'RUNNING'

-- name: task_state_of_result
-- The admin's status of a result (a subquery of its list; pgoutbox_task_result unaliased).
SELECT s.status FROM pgoutbox_task_state_v2 s WHERE s.id = pgoutbox_task_result.id

-- name: delete_task_results_before
-- event_cleaner: finished results older than TASK_RESULT_RETENTION; never unfinished ones.
DELETE FROM pgoutbox_task_result
WHERE status IN ('SUCCESSFUL', 'FAILED')
  AND finished_at < now() - make_interval(secs => %(seconds)s)

-- name: task_status_counts
-- outbox_status: task results per status.
SELECT status, count(*) FROM pgoutbox_task_state_v2 GROUP BY status ORDER BY status
