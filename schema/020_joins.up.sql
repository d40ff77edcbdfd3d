-- Joining a running deliver job. A job whose run has sent what was due and
-- waits for more holds its hook's row here: the fan-out then gives the
-- hook's new deliveries to that job (their joined is the job's token, a
-- value its args carry, which the job that the rescuer puts in its place
-- carries too) instead of queueing a job for them, and wakes it. The job
-- deletes the row before its run ends, and loads the deliveries joined to
-- it at every run. The fan-out reads the row FOR SHARE, so the delete waits
-- for a fan-out that is joining deliveries to the job, and the job's next
-- load sees them. One row per hook: one job at a time takes what comes.
CREATE TABLE /* TEMPLATE: schema */joins (
    hook_id uuid PRIMARY KEY REFERENCES /* TEMPLATE: schema */hooks (id) ON DELETE CASCADE,
    token uuid NOT NULL,
    job_id bigint NOT NULL
);

-- joined never changes once the fan-out sets it: the index leaves the
-- attempts' updates HOT. A token's deliveries are few, finished ones
-- included: a job takes them in its first run only, up to a batch.
ALTER TABLE /* TEMPLATE: schema */deliveries ADD COLUMN joined uuid;
CREATE INDEX deliveries_joined_idx ON /* TEMPLATE: schema */deliveries (joined) WHERE joined IS NOT NULL;
