-- Tags (issue 16, item 2): LiteLLM's /tag/daily/activity, cached day by day like user activity, in
-- tables of their own. Nothing here touches usage_facts or its rollups: the untagged paths are unchanged.

-- One row per date held, as usage_days: open/closed, verified, and the day's sums (over every tag: a
-- request with N tags is counted N times here, so these are never compared with usage_days).
CREATE TABLE tag_days (
    date               date PRIMARY KEY,
    status             text NOT NULL CHECK (status IN ('open', 'closed')),
    fetched_at         timestamptz NOT NULL,
    verified           boolean NOT NULL,
    fact_count         integer NOT NULL,
    spend              numeric NOT NULL,
    api_requests       bigint NOT NULL,
    total_tokens       bigint NOT NULL,
    unverified_fetches integer NOT NULL DEFAULT 0
);

-- One row per date x tag x LiteLLM key bucket x model x provider: LiteLLM_DailyTagSpend's rows summed
-- over the columns it has and the gateway does not keep (model group, endpoint, MCP tool). Bucket names
-- as LiteLLM sends them ('unattributed', 'raw:...', 'unknown-model', 'unknown'). The table has no user:
-- a tag fact's user is its key's attributed owner on its date (attributed_user, migration 0001).
CREATE TABLE tag_facts (
    date                         date NOT NULL,
    tag                          text NOT NULL,
    api_key                      text NOT NULL,
    model                        text NOT NULL,
    provider                     text NOT NULL,
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
    PRIMARY KEY (date, tag, api_key, model, provider)
);
CREATE INDEX tag_facts_tag_date ON tag_facts (tag, date);

-- Exports may group by tag; the check of migration 0002 predates it (and TEAM, migration 0007's dimension).
ALTER TABLE exports DROP CONSTRAINT IF EXISTS exports_group_by_check;
ALTER TABLE exports ADD CONSTRAINT exports_group_by_check
    CHECK (group_by <@ ARRAY['DATE', 'USER', 'API_KEY', 'MODEL', 'PROVIDER', 'TEAM', 'TAG']::text[]);
