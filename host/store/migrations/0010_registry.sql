-- The registry: what review found and decided about each version, which versions are
-- released to whom, suspended apps, and users' reports.

-- `trial` replaces `sideloaded`: a version its developer (and their testers) run before review.
UPDATE app_versions SET status = 'trial' WHERE status = 'sideloaded';
-- Findings computed once at upload (JSON array), the developer's notes to the reviewer, the
-- reviewer who claimed or decided it, the reason of a rejection, when it last changed.
ALTER TABLE app_versions ADD COLUMN findings TEXT NOT NULL DEFAULT '[]';
ALTER TABLE app_versions ADD COLUMN notes TEXT NOT NULL DEFAULT '';
ALTER TABLE app_versions ADD COLUMN reviewer TEXT;
ALTER TABLE app_versions ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE app_versions ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX app_versions_status ON app_versions (status, created_at);

-- What runs for ordinary users: `stable` for everyone, `candidate` instead for the users whose
-- bucket (a hash of their app-scoped id, 0..99) is below `percent`. `history`: the earlier
-- stable versions, newest last, space-separated (what a rollback goes back to).
CREATE TABLE app_releases (
    app_id TEXT PRIMARY KEY REFERENCES apps (id),
    stable TEXT,
    candidate TEXT,
    percent INTEGER NOT NULL DEFAULT 0,
    history TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    CHECK (percent >= 0 AND percent <= 100)
);

-- The kill switch: a suspended app runs nowhere.
ALTER TABLE apps ADD COLUMN suspended_reason TEXT;
ALTER TABLE apps ADD COLUMN suspended_at BIGINT;

-- Users' reports of an app, queued for reviewers.
CREATE TABLE app_reports (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    reporter TEXT NOT NULL REFERENCES users (id),
    conversation_id TEXT,
    reason TEXT NOT NULL,
    resolved_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX app_reports_open ON app_reports (resolved_at, created_at);
