-- Team rollups (issue 16's byTeam at 10,000 users): one row per day x team and per month x team, kept
-- exactly as the user rollups of migrations 0004 and 0006 are. Without them every byTeam page and every
-- teamIds filter grouped the whole range of usage_facts (0.6-1.0 s for 30-90 days of the reference data).
-- usage_facts.team_id changes when a key moves between teams (migration 0007's triggers update the facts),
-- and those updates reach these rollups through the same statement triggers as every other write.

-- As the user, key and model columns have theirs (0001): the month triggers look up "does this team still
-- have facts on this day" for every deleted fact, and a teamIds filter over the facts needs it too.
CREATE INDEX usage_facts_team_date ON usage_facts (team_id, date);

CREATE TABLE usage_team_days (
    date                         date NOT NULL,
    team_id                      text NOT NULL,
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
    PRIMARY KEY (date, team_id)
);
CREATE INDEX usage_team_days_team_date ON usage_team_days (team_id, date);

CREATE TABLE usage_team_months (
    month                        date NOT NULL,
    team_id                      text NOT NULL,
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
    active_days                  integer NOT NULL,
    PRIMARY KEY (month, team_id)
);

-- Migration 0004's day refresh, with the team rows.
CREATE OR REPLACE FUNCTION refresh_rollups(p_dates date[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM usage_user_days WHERE date = ANY(p_dates);
    INSERT INTO usage_user_days (date, user_id, spend, prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms, timed_requests)
    SELECT date, user_id, sum(spend), sum(prompt_tokens), sum(completion_tokens), sum(cache_read_input_tokens), sum(cache_creation_input_tokens), sum(total_tokens), sum(api_requests), sum(successful_requests), sum(failed_requests), sum(total_response_time_ms), sum(timed_requests)
      FROM usage_facts WHERE date = ANY(p_dates) GROUP BY date, user_id;
    DELETE FROM usage_model_days WHERE date = ANY(p_dates);
    INSERT INTO usage_model_days (date, model, provider, spend, prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms, timed_requests)
    SELECT date, model, provider, sum(spend), sum(prompt_tokens), sum(completion_tokens), sum(cache_read_input_tokens), sum(cache_creation_input_tokens), sum(total_tokens), sum(api_requests), sum(successful_requests), sum(failed_requests), sum(total_response_time_ms), sum(timed_requests)
      FROM usage_facts WHERE date = ANY(p_dates) GROUP BY date, model, provider;
    DELETE FROM usage_team_days WHERE date = ANY(p_dates);
    INSERT INTO usage_team_days (date, team_id, spend, prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms, timed_requests)
    SELECT date, team_id, sum(spend), sum(prompt_tokens), sum(completion_tokens), sum(cache_read_input_tokens), sum(cache_creation_input_tokens), sum(total_tokens), sum(api_requests), sum(successful_requests), sum(failed_requests), sum(total_response_time_ms), sum(timed_requests)
      FROM usage_facts WHERE date = ANY(p_dates) GROUP BY date, team_id;
$$;

-- Migration 0006's month rollups, with the team one: its triggers add and subtract team rows from now on.
CREATE OR REPLACE FUNCTION month_rollup_groups() RETURNS TABLE (rollup text, columns text[])
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('usage_user_months', ARRAY['user_id']),
           ('usage_key_months', ARRAY['api_key', 'user_id']),
           ('usage_model_months', ARRAY['model', 'provider']),
           ('usage_team_months', ARRAY['team_id'])
$$;

-- The facts already stored.
INSERT INTO usage_team_days (date, team_id, spend, prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms, timed_requests)
SELECT date, team_id, sum(spend), sum(prompt_tokens), sum(completion_tokens), sum(cache_read_input_tokens), sum(cache_creation_input_tokens), sum(total_tokens), sum(api_requests), sum(successful_requests), sum(failed_requests), sum(total_response_time_ms), sum(timed_requests)
  FROM usage_facts GROUP BY date, team_id;
INSERT INTO usage_team_months (month, team_id, spend, prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms, timed_requests, active_days)
SELECT date_trunc('month', date)::date, team_id, sum(spend), sum(prompt_tokens), sum(completion_tokens), sum(cache_read_input_tokens), sum(cache_creation_input_tokens), sum(total_tokens), sum(api_requests), sum(successful_requests), sum(failed_requests), sum(total_response_time_ms), sum(timed_requests), bit_or(1 << (extract(day FROM date)::integer - 1))
  FROM usage_facts GROUP BY 1, team_id;
