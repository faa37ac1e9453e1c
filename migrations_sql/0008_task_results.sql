-- Django Tasks (pgoutbox.tasks.OutboxTaskBackend). Immutable.
--
-- A task is a call row of pgoutbox_event (kind 'call', its function the name the task is
-- registered under, its queue the stream) plus one row here, written in the same statement:
-- the result a caller reads back with get_result(). The calls lane marks the row RUNNING when
-- it leases the call; the task's own transaction stores its return value (committed with the
-- task's writes) or its error.

-- Claims within a queue go by priority (Django's -100..100, higher first), then id.
ALTER TABLE pgoutbox_event ADD COLUMN priority smallint NOT NULL DEFAULT 0;

-- The calls lane's lease walks due calls in that order without sorting the backlog.
CREATE INDEX pgoutbox_event_pending_call_priority_id
    ON pgoutbox_event (priority DESC, id) WHERE status = 'pending' AND kind = 'call' AND NOT ordered;

CREATE TABLE pgoutbox_task_result (
    id uuid PRIMARY KEY,
    -- The call row while it exists (it is deleted once the task succeeded).
    event_id bigint NOT NULL UNIQUE,
    task_path text NOT NULL,
    backend text NOT NULL,
    queue_name text NOT NULL,
    priority smallint NOT NULL DEFAULT 0,
    run_after timestamptz,
    args jsonb NOT NULL DEFAULT '[]'::jsonb,
    kwargs jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'READY'
        CHECK (status IN ('READY', 'RUNNING', 'SUCCESSFUL', 'FAILED')),
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    last_attempted_at timestamptz,
    finished_at timestamptz,
    return_value jsonb,
    -- [{"exception_class_path": ..., "traceback": ...}, ...], one per failed attempt.
    errors jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- One entry per attempt: the relay session (client address/backend pid) that leased it.
    worker_ids jsonb NOT NULL DEFAULT '[]'::jsonb
);

-- event_cleaner removes finished results after TASK_RESULT_RETENTION.
CREATE INDEX pgoutbox_task_result_finished_at
    ON pgoutbox_task_result (finished_at) WHERE status IN ('SUCCESSFUL', 'FAILED');

-- What a result is now, from its row and its call's: a dead call is FAILED whatever ended it
-- (a run that killed its relay every time, an unregistered task), with the call's last error;
-- a RUNNING task whose lease is over is READY again (another relay will run it).
CREATE VIEW pgoutbox_task_state_v1 AS
SELECT r.id, r.event_id, r.task_path, r.backend, r.queue_name, r.priority, r.run_after,
       r.args, r.kwargs,
       CASE WHEN r.status IN ('SUCCESSFUL', 'FAILED') THEN r.status
            WHEN e.status = 'dead' THEN 'FAILED'
            WHEN r.status = 'RUNNING' AND e.available_at <= now() THEN 'READY'
            ELSE r.status
       END AS status,
       r.enqueued_at, r.started_at, r.last_attempted_at,
       coalesce(r.finished_at, CASE WHEN e.status = 'dead' THEN r.last_attempted_at END)
           AS finished_at,
       r.return_value, r.errors, r.worker_ids,
       CASE WHEN e.status = 'dead' AND r.status <> 'FAILED' THEN e.last_error END AS lost_error
FROM pgoutbox_task_result r
LEFT JOIN pgoutbox_event e ON e.id = r.event_id;
