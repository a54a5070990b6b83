-- Which version of the decision core decided each logged event (`handoff.core.version`), so
-- `handoff replay --verify` compares a decision as the core that made it would have. Rows
-- logged before this column existed hold NULL: their version is told from their shape
-- (`handoff.audit.versions`), since only the explanations' shape changed before it.
ALTER TABLE event_log ADD COLUMN core_version smallint;
