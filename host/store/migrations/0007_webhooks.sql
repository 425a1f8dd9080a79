-- Signed webhooks for payment events: each app's signing secret, and the durable outbox of
-- deliveries (one per payment event), retried with backoff until the app's endpoint answers 2xx.

-- The key an app's webhook deliveries are signed with (HMAC-SHA256), created on first use and
-- replaced when its developer rotates it.
CREATE TABLE webhook_secrets (
    app_id TEXT PRIMARY KEY REFERENCES apps (id),
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One delivery per payment event. next_attempt_at (ms) is when it is due; a sender that claims
-- it moves next_attempt_at forward (a lease) and counts the attempt, so two nodes never send the
-- same attempt at once. delivered_at is set by the first 2xx.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    event_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (order_id, created_at);
CREATE INDEX webhook_deliveries_app ON webhook_deliveries (app_id, created_at);
