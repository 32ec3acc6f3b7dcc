-- Exports group by LiteLLM's model groups, endpoints and MCP tools too (usage_breakdown_facts, 0009):
-- the check of 0008 knew neither. Depends on 0002 (exports) and 0008 (its check) only.
ALTER TABLE exports DROP CONSTRAINT IF EXISTS exports_group_by_check;
ALTER TABLE exports ADD CONSTRAINT exports_group_by_check
    CHECK (group_by <@ ARRAY['DATE', 'USER', 'API_KEY', 'MODEL', 'PROVIDER', 'TEAM', 'TAG',
                             'MODEL_GROUP', 'ENDPOINT', 'MCP_SERVER']::text[]);
