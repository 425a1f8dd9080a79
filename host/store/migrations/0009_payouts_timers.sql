-- Payouts: money an app pays the user of one of its events from its merchant account (the red
-- envelope's shares). Each one a row here and a ledger transaction (kind 'payout', merchant ->
-- wallet, `txn_id`), written in one transaction. The app's idempotency key names one payout.
CREATE TABLE payouts (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    conversation_id TEXT,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    txn_id TEXT NOT NULL REFERENCES ledger_txns (id),
    created_at BIGINT NOT NULL,
    UNIQUE (app_id, idempotency_key),
    CHECK (amount > 0)
);
CREATE INDEX payouts_user ON payouts (user_id, created_at);

-- Timers an app set (`timers.set`): a `timer` event for `key` in `conversation_id`, on behalf of
-- `user_id`, at `due_at` (ms). A node claims a due timer by pushing `lease_until` forward
-- (a conditional update decides between nodes) and deletes it once its event has run; a timer
-- whose node died is claimed again when the lease ends (at least once).
CREATE TABLE app_timers (
    app_id TEXT NOT NULL REFERENCES apps (id),
    conversation_id TEXT NOT NULL,
    timer_key TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    due_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, conversation_id, timer_key)
);
CREATE INDEX app_timers_due ON app_timers (due_at);
