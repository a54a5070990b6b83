-- The event log: every accepted input and every decision, in order per workspace.
CREATE TABLE event_log (
    workspace_id     text        NOT NULL,
    seq              bigint      NOT NULL,  -- position within the workspace, from 1
    source           text        NOT NULL,  -- the CloudEvent's source
    event_id         text        NOT NULL,
    type             text        NOT NULL,
    is_input         boolean     NOT NULL,
    causation_id     text,
    decided_at       timestamptz NOT NULL,  -- the clock reading the decision was given
    body             jsonb       NOT NULL,  -- the CloudEvent, as on the wire
    source_topic     text,
    source_partition integer,
    source_offset    bigint,
    PRIMARY KEY (workspace_id, seq)
);
-- An input is accepted once: CloudEvents ids are unique per source (the contract's dedupe key).
CREATE UNIQUE INDEX event_log_input_id ON event_log (workspace_id, source, event_id) WHERE is_input;

-- The projections' rows (see handoff_projections), written in the same transaction as the log.
CREATE TABLE projection_rows (
    workspace_id text  NOT NULL,
    tbl          text  NOT NULL,
    key          text  NOT NULL,
    value        jsonb NOT NULL,
    PRIMARY KEY (workspace_id, tbl, key)
);

-- The last logged position of each workspace: what its projections are folded up to.
CREATE TABLE workspaces (
    workspace_id text   PRIMARY KEY,
    version      bigint NOT NULL
);

-- Where the consumer is, stored with what it produced; compare-and-set fences a zombie.
CREATE TABLE consumer_positions (
    group_id    text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);

-- Outputs waiting to be produced; relayed in seq order by the owner of `partition`.
CREATE TABLE outbox (
    seq       bigserial PRIMARY KEY,
    partition integer   NOT NULL,  -- the input partition whose batch wrote it
    topic     text      NOT NULL,
    key       bytea,
    value     bytea     NOT NULL
);
CREATE INDEX outbox_partition ON outbox (partition, seq);
