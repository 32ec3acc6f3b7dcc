-- Model groups, endpoints and MCP tools: LiteLLM rolls each day up by each of them, apart from users and
-- providers, with a per-key part (CONTRACT 2.4-2.6). The gateway reads every day model by model (model=),
-- so each part is also known per model. One row per date x roll-up x bucket x LiteLLM key bucket x model;
-- bucket names as LiteLLM sends them ('unknown-model-group'; endpoints and MCP tools only for rows that
-- have one). Written with the day's usage_facts, in the same transaction (DayStore.replace_days). The
-- user of a row is the attributed user of its key on its day, read from usage_facts when asked for.
CREATE TABLE usage_breakdown_facts (
    date                         date NOT NULL,
    rollup                       text NOT NULL CHECK (rollup IN ('model_group', 'endpoint', 'mcp_server')),
    bucket                       text NOT NULL,
    api_key                      text NOT NULL,
    model                        text NOT NULL,
    spend                        numeric NOT NULL,
    prompt_tokens                bigint NOT NULL,
    completion_tokens            bigint NOT NULL,
    cache_read_input_tokens      bigint NOT NULL,
    cache_creation_input_tokens  bigint NOT NULL,
    total_tokens                 bigint NOT NULL,
    api_requests                 bigint NOT NULL,
    successful_requests          bigint NOT NULL,
    failed_requests              bigint NOT NULL,
    total_response_time_ms       bigint NOT NULL,
    timed_requests               bigint NOT NULL,
    -- Date first: replace_days deletes by date, a breakdown reads a range of dates of one roll-up.
    PRIMARY KEY (date, rollup, bucket, api_key, model)
);

-- Days stored before this migration have no breakdown rows. They stay closed (a closed day is not read
-- again unless an admin asks: reopening them all would make the first queries after an upgrade re-read
-- every stored day from LiteLLM); the breakdowns refuse a range holding one, naming the days, until
-- refreshRange or `usage-gateway backfill --refresh` reads them (side_breakdowns.days_without_side_facts).
