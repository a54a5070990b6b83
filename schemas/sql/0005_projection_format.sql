-- The shape of the stored projections. A version of handoff whose folds keep rows the stored
-- projections lack (format 2, routing v1.1: last assignments and presence changes) does not
-- consume until `handoff replay --rebuild` has folded the log into its shape; /readyz says
-- so meanwhile. A database with no log yet is in the new shape.
CREATE TABLE projection_format (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  integer NOT NULL
);
INSERT INTO projection_format (version)
SELECT CASE WHEN EXISTS (SELECT 1 FROM event_log) THEN 1 ELSE 2 END;
