-- How long each invocation waited for an execution slot (the admission queue).
ALTER TABLE invocations ADD COLUMN queued_us BIGINT NOT NULL DEFAULT 0;
