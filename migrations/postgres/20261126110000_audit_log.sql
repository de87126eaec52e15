-- Issue 12, item 4: operators repair sessions, on the record.
--
-- The audit log: one row per mutating API call (and so per operator action), written by the
-- API's middleware after the answer: who (the token's sub and role; none without a valid
-- token), what (method and route template), about what (the ids in the path, and those the
-- handler names), the request id, the answer's status, and when. No request bodies, names,
-- emails or reasons: nothing here is health information. Append-only: the database refuses
-- UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    request_id TEXT NOT NULL,
    actor      TEXT,
    role       TEXT,
    action     TEXT NOT NULL,
    outcome    INTEGER NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE audit_subjects (
    entry_id   BIGINT NOT NULL REFERENCES audit_log (id),
    subject_id TEXT NOT NULL,
    PRIMARY KEY (entry_id, subject_id)
);
CREATE INDEX audit_subjects_subject ON audit_subjects (subject_id, entry_id);

CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_subjects_append_only BEFORE UPDATE OR DELETE ON audit_subjects
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_subjects_no_truncate BEFORE TRUNCATE ON audit_subjects
    FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only();

-- Why an operator acted, which may be health information: kept here, never in workflow history
-- or in the audit log; the request id ties it to its audit row. Written once the action was
-- taken (or may have been: a `202`).
CREATE TABLE operator_actions (
    id           UUID PRIMARY KEY,
    action       TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    request_id   TEXT NOT NULL
);
CREATE INDEX operator_actions_subject ON operator_actions (subject_id, requested_at);

-- A credit an operator granted is `operator_grant`: it never expires with a billing period.
ALTER TABLE credits DROP CONSTRAINT credits_source_check;
ALTER TABLE credits ADD CONSTRAINT credits_source_check
    CHECK (source IN ('plan_grant', 'purchase', 'intake_authorization', 'next_authorization', 'operator_grant'));

-- The credit each operator's grant or removal moved, once per action: a retried activity finds
-- it and moves nothing more.
CREATE TABLE credit_adjustments (
    action_id  UUID PRIMARY KEY,
    client_id  UUID NOT NULL REFERENCES clients (id),
    adjustment TEXT NOT NULL CHECK (adjustment IN ('grant', 'remove')),
    credit_id  UUID NOT NULL REFERENCES credits (id),
    created_at TIMESTAMPTZ NOT NULL
);
