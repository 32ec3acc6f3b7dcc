-- Budgets (issue 17): LiteLLM's max_budget, budget_duration and budget_reset_at of keys, users and teams,
-- as the last syncDirectory read them. The current setting only (no history): one row per entity that has
-- a budget; a budget LiteLLM no longer shows (removed, or its key, user or team gone) loses its row.
CREATE TABLE budgets (
    entity           text NOT NULL CHECK (entity IN ('API_KEY', 'USER', 'TEAM')),
    entity_id        text NOT NULL,         -- a key's token hash, a user id, a team id
    max_budget       numeric NOT NULL,      -- exact decimal of LiteLLM's double (USD)
    budget_duration  text,                  -- as set in LiteLLM ("30d", "1mo", …); NULL: never reset
    budget_reset_at  timestamptz,           -- LiteLLM's next reset, when it has one
    updated_at       timestamptz NOT NULL DEFAULT now(),  -- when a sync last wrote the row
    PRIMARY KEY (entity, entity_id)
);
