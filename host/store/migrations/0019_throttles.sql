-- Throttle buckets (failed sign-ins, sign-ups, secret checks) shared by every node of a
-- deployment: a token bucket per (scope, key), refilled continuously; a row untouched for long
-- enough is full again and is deleted.
CREATE TABLE throttle_buckets (
    scope TEXT NOT NULL,
    bucket_key TEXT NOT NULL,
    tokens DOUBLE PRECISION NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, bucket_key)
);
CREATE INDEX throttle_buckets_at ON throttle_buckets(at_ms);
