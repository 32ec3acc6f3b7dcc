-- Monthly rollups of usage_facts (issue 12): one row per month x attributed user, per month x key bucket x
-- attributed user, and per month x model x provider, each with the days of the month it had facts on
-- (active_days: bit d-1 set for day d). A range is answered from whole months, corrected at its edges by
-- adding or subtracting day rows (exact: every metric is an integer or a numeric), and who was active in
-- it from the month rows alone: a group is active in a range iff its active_days meet the range's days.
--
-- Triggers keep them equal to the facts, in the statement that writes the facts: inserted facts are added,
-- deleted ones subtracted (an update does both), then the days a group no longer has facts on are cleared
-- and the months it has none in are dropped. Rows are written in key order, so concurrent day writes of
-- one month lock the rows they share in the same order and cannot deadlock.

CREATE TABLE usage_user_months (
    month                        date NOT NULL,
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
    active_days                  integer NOT NULL,
    PRIMARY KEY (month, user_id)
);

CREATE TABLE usage_key_months (
    month                        date NOT NULL,
    api_key                      text NOT NULL,
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
    active_days                  integer NOT NULL,
    PRIMARY KEY (month, api_key, user_id)
);
-- An end user's own keys.
CREATE INDEX usage_key_months_user_month ON usage_key_months (user_id, month);

CREATE TABLE usage_model_months (
    month                        date NOT NULL,
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
    active_days                  integer NOT NULL,
    PRIMARY KEY (month, model, provider)
);

-- Each month rollup and the usage_facts columns that name its groups.
CREATE FUNCTION month_rollup_groups() RETURNS TABLE (rollup text, columns text[]) LANGUAGE sql IMMUTABLE AS $$
    VALUES ('usage_user_months', ARRAY['user_id']),
           ('usage_key_months', ARRAY['api_key', 'user_id']),
           ('usage_model_months', ARRAY['model', 'provider'])
$$;

-- The statements that add (p_sign 1) or subtract (-1) the facts of relation p_facts (a transition table,
-- or usage_facts itself) to every month rollup; after a subtraction, they correct the rollups' active days
-- from usage_facts as it now is. Returned as text for the caller to EXECUTE: a trigger's transition tables
-- are visible to the trigger function's own statements only.
CREATE FUNCTION month_rollup_statements(p_facts text, p_sign integer) RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    g record;
    cols text;
BEGIN
    FOR g IN SELECT * FROM month_rollup_groups() LOOP
        cols := array_to_string(g.columns, ', ');
        RETURN NEXT format($sql$
            INSERT INTO %1$I AS m (month, %2$s, spend, prompt_tokens, completion_tokens,
                cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests,
                successful_requests, failed_requests, total_response_time_ms, timed_requests, active_days)
            SELECT date_trunc('month', date)::date, %2$s, %3$s * sum(spend), %3$s * sum(prompt_tokens),
                %3$s * sum(completion_tokens), %3$s * sum(cache_read_input_tokens),
                %3$s * sum(cache_creation_input_tokens), %3$s * sum(total_tokens), %3$s * sum(api_requests),
                %3$s * sum(successful_requests), %3$s * sum(failed_requests),
                %3$s * sum(total_response_time_ms), %3$s * sum(timed_requests),
                CASE WHEN %3$s > 0 THEN bit_or(1 << (extract(day FROM date)::integer - 1)) ELSE 0 END
              FROM %4$I GROUP BY 1, %2$s ORDER BY 1, %2$s
            ON CONFLICT (month, %2$s) DO UPDATE SET
                spend = m.spend + EXCLUDED.spend,
                prompt_tokens = m.prompt_tokens + EXCLUDED.prompt_tokens,
                completion_tokens = m.completion_tokens + EXCLUDED.completion_tokens,
                cache_read_input_tokens = m.cache_read_input_tokens + EXCLUDED.cache_read_input_tokens,
                cache_creation_input_tokens = m.cache_creation_input_tokens + EXCLUDED.cache_creation_input_tokens,
                total_tokens = m.total_tokens + EXCLUDED.total_tokens,
                api_requests = m.api_requests + EXCLUDED.api_requests,
                successful_requests = m.successful_requests + EXCLUDED.successful_requests,
                failed_requests = m.failed_requests + EXCLUDED.failed_requests,
                total_response_time_ms = m.total_response_time_ms + EXCLUDED.total_response_time_ms,
                timed_requests = m.timed_requests + EXCLUDED.timed_requests,
                active_days = m.active_days | EXCLUDED.active_days
            $sql$, g.rollup, cols, p_sign, p_facts);
        IF p_sign < 0 THEN
            -- The days on which a group lost its last fact, by month; then the months left with no day.
            RETURN NEXT format($sql$
                UPDATE %1$I m SET active_days = m.active_days & ~gone.days
                  FROM (SELECT month, %2$s, bit_or(day_bit) AS days
                          FROM (SELECT DISTINCT date_trunc('month', o.date)::date AS month, %3$s,
                                       1 << (extract(day FROM o.date)::integer - 1) AS day_bit
                                  FROM %4$I o
                                 WHERE NOT EXISTS (SELECT 1 FROM usage_facts f WHERE f.date = o.date AND %5$s)
                               ) lost
                         GROUP BY month, %2$s) gone
                 WHERE (m.month, %6$s) = (gone.month, %7$s)
                $sql$, g.rollup, cols,
                (SELECT string_agg(format('o.%I', c), ', ') FROM unnest(g.columns) c),
                p_facts,
                (SELECT string_agg(format('f.%1$I = o.%1$I', c), ' AND ') FROM unnest(g.columns) c),
                (SELECT string_agg(format('m.%I', c), ', ') FROM unnest(g.columns) c),
                (SELECT string_agg(format('gone.%I', c), ', ') FROM unnest(g.columns) c));
            RETURN NEXT format(
                'DELETE FROM %I WHERE active_days = 0'
                ' AND month IN (SELECT DISTINCT date_trunc(''month'', date)::date FROM %I)',
                g.rollup, p_facts);
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION usage_facts_apply_to_month_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    statement text;
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        FOR statement IN SELECT month_rollup_statements('old_facts', -1) LOOP
            EXECUTE statement;
        END LOOP;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        FOR statement IN SELECT month_rollup_statements('new_facts', 1) LOOP
            EXECUTE statement;
        END LOOP;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER usage_facts_months_after_insert AFTER INSERT ON usage_facts
    REFERENCING NEW TABLE AS new_facts
    FOR EACH STATEMENT EXECUTE FUNCTION usage_facts_apply_to_month_rollups();
CREATE TRIGGER usage_facts_months_after_update AFTER UPDATE ON usage_facts
    REFERENCING NEW TABLE AS new_facts OLD TABLE AS old_facts
    FOR EACH STATEMENT EXECUTE FUNCTION usage_facts_apply_to_month_rollups();
CREATE TRIGGER usage_facts_months_after_delete AFTER DELETE ON usage_facts
    REFERENCING OLD TABLE AS old_facts
    FOR EACH STATEMENT EXECUTE FUNCTION usage_facts_apply_to_month_rollups();

DO $$
DECLARE
    statement text;
BEGIN
    FOR statement IN SELECT month_rollup_statements('usage_facts', 1) LOOP
        EXECUTE statement;
    END LOOP;
END $$;
