-- Grouping by user x key x model is how breakdowns pre-aggregate; without multivariate statistics the
-- planner multiplies the per-column estimates, overestimates the groups and picks a sort over a hash.
CREATE STATISTICS usage_facts_group_ndistinct (ndistinct) ON user_id, api_key, model FROM usage_facts;
