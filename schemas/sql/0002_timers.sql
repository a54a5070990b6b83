-- Due times of waiting runs (mirrors the `timers` projection), indexed for the poller:
-- each instance asks only for the partitions it owns.
CREATE TABLE timers (
    workspace_id text        NOT NULL,
    run_id       text        NOT NULL,
    partition    integer     NOT NULL,
    due_at       timestamptz NOT NULL,
    step_id      text        NOT NULL,
    kind         text        NOT NULL,
    PRIMARY KEY (workspace_id, run_id)
);
CREATE INDEX timers_due ON timers (partition, due_at);
