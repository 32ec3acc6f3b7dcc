-- Daily rollups of usage_facts, for the questions that need fewer dimensions than a fact has: one row
-- per day x attributed user (about 3.5 facts each on the reference data) and per day x model x provider
-- (about 60 facts each). datasources/facts.py reads a rollup whenever a query touches only its columns.
-- Triggers keep them equal to the facts: every statement that writes facts recomputes the days it touched.

CREATE TABLE usage_user_days (
    date                         date NOT NULL,
    user_id                      text NOT NULL,
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
    PRIMARY KEY (date, user_id)
);
CREATE INDEX usage_user_days_user_date ON usage_user_days (user_id, date);

CREATE TABLE usage_model_days (
    date                         date NOT NULL,
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
    PRIMARY KEY (date, model, provider)
);

CREATE FUNCTION refresh_rollups(p_dates date[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM usage_user_days WHERE date = ANY(p_dates);
    INSERT INTO usage_user_days (date, user_id, spend, prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms, timed_requests)
    SELECT date, user_id, sum(spend), sum(prompt_tokens), sum(completion_tokens), sum(cache_read_input_tokens), sum(cache_creation_input_tokens), sum(total_tokens), sum(api_requests), sum(successful_requests), sum(failed_requests), sum(total_response_time_ms), sum(timed_requests)
      FROM usage_facts WHERE date = ANY(p_dates) GROUP BY date, user_id;
    DELETE FROM usage_model_days WHERE date = ANY(p_dates);
    INSERT INTO usage_model_days (date, model, provider, spend, prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms, timed_requests)
    SELECT date, model, provider, sum(spend), sum(prompt_tokens), sum(completion_tokens), sum(cache_read_input_tokens), sum(cache_creation_input_tokens), sum(total_tokens), sum(api_requests), sum(successful_requests), sum(failed_requests), sum(total_response_time_ms), sum(timed_requests)
      FROM usage_facts WHERE date = ANY(p_dates) GROUP BY date, model, provider;
$$;

CREATE FUNCTION usage_facts_refresh_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM refresh_rollups(ARRAY(SELECT DISTINCT date FROM old_facts));
    ELSE
        PERFORM refresh_rollups(ARRAY(SELECT DISTINCT date FROM new_facts));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER usage_facts_after_insert AFTER INSERT ON usage_facts
    REFERENCING NEW TABLE AS new_facts FOR EACH STATEMENT EXECUTE FUNCTION usage_facts_refresh_rollups();
CREATE TRIGGER usage_facts_after_update AFTER UPDATE ON usage_facts
    REFERENCING NEW TABLE AS new_facts FOR EACH STATEMENT EXECUTE FUNCTION usage_facts_refresh_rollups();
CREATE TRIGGER usage_facts_after_delete AFTER DELETE ON usage_facts
    REFERENCING OLD TABLE AS old_facts FOR EACH STATEMENT EXECUTE FUNCTION usage_facts_refresh_rollups();

SELECT refresh_rollups(ARRAY(SELECT DISTINCT date FROM usage_facts));
