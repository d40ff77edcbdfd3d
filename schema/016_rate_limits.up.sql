-- A hook's rate limit, held across every process that serves the database:
-- at most rate_count requests per rate_period_s seconds (1 or 60), after a
-- burst of up to rate_burst more when the hook was idle. NULL: unlimited.
ALTER TABLE /* TEMPLATE: schema */hooks
    ADD COLUMN rate_count integer CHECK (rate_count BETWEEN 1 AND 100000),
    ADD COLUMN rate_period_s integer CHECK (rate_period_s IN (1, 60)),
    ADD COLUMN rate_burst integer NOT NULL DEFAULT 0 CHECK (rate_burst BETWEEN 0 AND 100000),
    ADD CONSTRAINT hooks_rate_whole CHECK ((rate_count IS NULL) = (rate_period_s IS NULL));

-- The generic cell rate algorithm's state of each limited hook, apart from
-- the hook's row, which it would churn: tat, the theoretical arrival time,
-- is when the hook's next request is due at its rate. A run of a deliver
-- job reserves the requests it may make in one statement (queries/hook.sql,
-- RateReserve), under the row's lock. Each request's time follows from
-- tat, so every process's share is exact, whatever the number of processes.
CREATE TABLE /* TEMPLATE: schema */hook_rates (
    hook_id uuid PRIMARY KEY REFERENCES /* TEMPLATE: schema */hooks (id) ON DELETE CASCADE,
    tat timestamptz NOT NULL DEFAULT now()
);
