-- SQLite twin of migrations/postgres: UUIDs as 16-byte BLOBs, instants as RFC 3339 TEXT.
-- Issue 12, item 4: operators repair sessions, on the record.
--
-- The audit log: one row per mutating API call (and so per operator action), written by the
-- API's middleware after the answer: who (the token's sub and role; none without a valid
-- token), what (method and route template), about what (the ids in the path, and those the
-- handler names), the request id, the answer's status, and when. No request bodies, names,
-- emails or reasons: nothing here is health information. Append-only: the database refuses
-- UPDATE and DELETE.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    request_id TEXT NOT NULL,
    actor      TEXT,
    role       TEXT,
    action     TEXT NOT NULL,
    outcome    INTEGER NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE audit_subjects (
    entry_id   INTEGER NOT NULL REFERENCES audit_log (id),
    subject_id TEXT NOT NULL,
    PRIMARY KEY (entry_id, subject_id)
);
CREATE INDEX audit_subjects_subject ON audit_subjects (subject_id, entry_id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE on audit_log is refused'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE on audit_log is refused'); END;
CREATE TRIGGER audit_subjects_no_update BEFORE UPDATE ON audit_subjects
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE on audit_subjects is refused'); END;
CREATE TRIGGER audit_subjects_no_delete BEFORE DELETE ON audit_subjects
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE on audit_subjects is refused'); END;

-- Why an operator acted, which may be health information: kept here, never in workflow history
-- or in the audit log; the request id ties it to its audit row. Written once the action was
-- taken (or may have been: a `202`).
CREATE TABLE operator_actions (
    id           BLOB PRIMARY KEY,
    action       TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    request_id   TEXT NOT NULL
);
CREATE INDEX operator_actions_subject ON operator_actions (subject_id, requested_at);

-- A credit an operator granted is `operator_grant`: it never expires with a billing period.
CREATE TABLE credits_new (
    id             BLOB PRIMARY KEY,
    client_id      BLOB NOT NULL REFERENCES clients (id),
    kind           TEXT NOT NULL CHECK (kind IN ('credit', 'authorization')),
    source         TEXT NOT NULL CHECK (source IN ('plan_grant', 'purchase', 'intake_authorization', 'next_authorization', 'operator_grant')),
    status         TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'consumed', 'forfeited', 'revoked', 'expired')),
    session_id     BLOB REFERENCES sessions (id),
    -- For an authorization: the estimate the client authorized.
    estimate_minor INTEGER,
    currency       TEXT,
    -- For a purchase, a next-session authorization or an operator's grant: what made it, so a
    -- retry makes nothing new.
    idempotency_key TEXT UNIQUE,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    CHECK ((status IN ('available', 'revoked', 'expired')) = (session_id IS NULL))
);
INSERT INTO credits_new (id, client_id, kind, source, status, session_id, estimate_minor, currency,
                         idempotency_key, created_at, updated_at)
    SELECT id, client_id, kind, source, status, session_id, estimate_minor, currency,
           idempotency_key, created_at, updated_at
    FROM credits;
DROP TABLE credits;
ALTER TABLE credits_new RENAME TO credits;
CREATE INDEX credits_client_status ON credits (client_id, kind, status, created_at);
CREATE INDEX credits_session ON credits (session_id, status);

-- The credit each operator's grant or removal moved, once per action: a retried activity finds
-- it and moves nothing more.
CREATE TABLE credit_adjustments (
    action_id  BLOB PRIMARY KEY,
    client_id  BLOB NOT NULL REFERENCES clients (id),
    adjustment TEXT NOT NULL CHECK (adjustment IN ('grant', 'remove')),
    credit_id  BLOB NOT NULL REFERENCES credits (id),
    created_at TEXT NOT NULL
);
