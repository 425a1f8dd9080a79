-- Payments: accounts in integer minor units, a double-entry ledger, payment orders with one
-- state machine, payment PINs with lockout, the outbox of payment events, and an audit log.

-- An account holds one currency. kind: wallet (owner = user id), merchant (owner = app id),
-- platform (owner = ''), external (owner = where money enters, e.g. 'top-up'; the only kind
-- that may go negative, so that the sum of all accounts of a currency is always zero).
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, owner, currency),
    CHECK (kind = 'external' OR balance >= 0)
);

-- A ledger transaction: what moved money, and why. Its entries sum to zero.
CREATE TABLE ledger_txns (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    order_id TEXT,
    refund_id TEXT,
    actor TEXT NOT NULL,
    memo TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ledger_txns_order ON ledger_txns (order_id);

CREATE TABLE ledger_entries (
    txn_id TEXT NOT NULL REFERENCES ledger_txns (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL,
    PRIMARY KEY (txn_id, account_id)
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id);

-- A payment order. state: pending, paid, declined, expired, partially_refunded, refunded.
-- origin: sandbox (the payments capability) or backend (the Open API).
CREATE TABLE payment_orders (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    conversation_id TEXT,
    origin TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    state TEXT NOT NULL,
    refunded BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_id, idempotency_key),
    CHECK (amount > 0 AND refunded >= 0 AND refunded <= amount)
);
CREATE INDEX payment_orders_user ON payment_orders (user_id, created_at);
CREATE INDEX payment_orders_pending ON payment_orders (expires_at) WHERE state = 'pending';

-- A user's payment PIN (argon2id) and its wrong-try counter; locked_until in ms.
CREATE TABLE payment_pins (
    user_id TEXT PRIMARY KEY REFERENCES users (id),
    pin_hash TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

-- What happened to an order, written in the same transaction as the change: the outbox from
-- which the app's `payment` event and its webhook are delivered.
CREATE TABLE payment_events (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES payment_orders (id),
    app_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    dispatched_at BIGINT
);
CREATE INDEX payment_events_undispatched ON payment_events (created_at) WHERE dispatched_at IS NULL;

-- Operator actions that matter later (top-ups, role changes): who, what, when.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
