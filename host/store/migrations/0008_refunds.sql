-- Refunds of paid orders, full or partial: each one a row here, a ledger transaction (kind
-- 'refund', merchant -> wallet, refund_id = this id), a 'refunded' payment event, and the
-- order's `refunded` raised in the same transaction. The app's idempotency key names one refund:
-- the same key again is the same refund.
CREATE TABLE payment_refunds (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES payment_orders (id),
    app_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    reason TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- Who asked: `backend:<client id>` for the app's backend, `developer:<username>`.
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (app_id, idempotency_key),
    CHECK (amount > 0)
);
CREATE INDEX payment_refunds_order ON payment_refunds (order_id, created_at);

-- A developer lists the orders of their app, newest first.
CREATE INDEX payment_orders_app ON payment_orders (app_id, created_at);
