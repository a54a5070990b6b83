-- Fencing and identity of stored positions.
-- generation: each take of a partition draws a new one for its rows, and every commit checks
-- it, so a zombie is fenced by its step even when the step moves no position (timers only).
-- marker: the Kafka timestamp and CRC-32 of the record just before next_offset, checked when a
-- partition is taken: a broker or topic that is not the one that issued the position (a
-- cluster or topic recreated) holds another record there, and the partition is re-read.
CREATE SEQUENCE position_generation;
ALTER TABLE consumer_positions
    ADD COLUMN generation bigint NOT NULL DEFAULT 0,
    ADD COLUMN marker text;
