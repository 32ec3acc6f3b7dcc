-- The directory (written by the host application or by syncDirectory), the day cache and its facts.

CREATE TABLE users (
    id          text PRIMARY KEY,
    username    text,
    email       text,
    role        text,
    department  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id               text PRIMARY KEY,
    user_id          text REFERENCES users (id),
    name             text,
    key_alias        text,
    token_hash       char(64) UNIQUE NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    litellm_user_id  text,
    team_id          text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

-- Who owned a key from which UTC day on. Maintained by triggers on api_keys so that a key that changes
-- hands keeps its earlier spend under its earlier owner, whoever writes the directory.
CREATE TABLE api_key_owners (
    token_hash  text NOT NULL,
    valid_from  date NOT NULL,
    user_id     text,
    PRIMARY KEY (token_hash, valid_from)
);

-- One row per UTC day the cache holds. A closed day is never fetched again (unless an admin asks).
CREATE TABLE usage_days (
    date             date PRIMARY KEY,
    status           text NOT NULL CHECK (status IN ('open', 'closed')),
    fetched_at       timestamptz NOT NULL,
    verified         boolean NOT NULL,
    fact_count       integer NOT NULL,
    spend            numeric NOT NULL,
    api_requests     bigint NOT NULL,
    total_tokens     bigint NOT NULL
);

-- Normalised day facts: one row per date x LiteLLM key bucket x LiteLLM user x model x provider.
-- api_key, litellm_user_id, model and provider keep LiteLLM's bucket names ('unattributed', 'raw:...',
-- 'Unassigned', 'unknown-model', 'unknown'). user_id is the attributed user (DESIGN section 4).
CREATE TABLE usage_facts (
    date                         date NOT NULL,
    api_key                      text NOT NULL,
    litellm_user_id              text NOT NULL,
    model                        text NOT NULL,
    provider                     text NOT NULL,
    user_id                      text NOT NULL,
    spend                        numeric NOT NULL,  -- exact decimal of LiteLLM's double: sums are exact
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
    PRIMARY KEY (date, api_key, litellm_user_id, model, provider)
);
CREATE INDEX usage_facts_user_date ON usage_facts (user_id, date);
CREATE INDEX usage_facts_key_date ON usage_facts (api_key, date);
CREATE INDEX usage_facts_model_date ON usage_facts (model, date);

-- What LiteLLM says about each key bucket it reported (alias, team, owner), newest first seen wins.
CREATE TABLE litellm_keys (
    api_key      text PRIMARY KEY,
    key_alias    text,
    team_id      text,
    user_id      text,
    user_email   text,
    key_exists   boolean,
    last_seen    date NOT NULL
);

-- The attributed user of a fact: the directory owner of the key on that day; else the LiteLLM user as
-- 'litellm:<id>'; else 'unattributed'. Spend without a key is always unattributed.
CREATE FUNCTION attributed_user(p_api_key text, p_date date, p_litellm_user_id text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_api_key = 'unattributed' THEN 'unattributed'
        ELSE COALESCE(
            (SELECT o.user_id FROM api_key_owners o
              WHERE o.token_hash = p_api_key AND o.valid_from <= p_date
              ORDER BY o.valid_from DESC LIMIT 1),
            CASE WHEN p_litellm_user_id NOT IN ('', 'Unassigned') THEN 'litellm:' || p_litellm_user_id END,
            'unattributed')
    END
$$;

CREATE FUNCTION api_keys_track_new_owners() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO api_key_owners (token_hash, valid_from, user_id)
    SELECT n.token_hash, '-infinity'::date, n.user_id FROM new_keys n
    ON CONFLICT (token_hash, valid_from) DO UPDATE SET user_id = EXCLUDED.user_id;
    UPDATE usage_facts f SET user_id = attributed_user(f.api_key, f.date, f.litellm_user_id)
      FROM new_keys n WHERE f.api_key = n.token_hash;
    RETURN NULL;
END $$;

CREATE FUNCTION api_keys_track_owner_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    INSERT INTO api_key_owners (token_hash, valid_from, user_id)
    SELECT n.token_hash, today, n.user_id
      FROM new_keys n JOIN old_keys o ON o.id = n.id
     WHERE o.user_id IS DISTINCT FROM n.user_id OR o.token_hash <> n.token_hash
    ON CONFLICT (token_hash, valid_from) DO UPDATE SET user_id = EXCLUDED.user_id;
    UPDATE usage_facts f SET user_id = attributed_user(f.api_key, f.date, f.litellm_user_id)
      FROM new_keys n JOIN old_keys o ON o.id = n.id
     WHERE (o.user_id IS DISTINCT FROM n.user_id OR o.token_hash <> n.token_hash)
       AND f.api_key = n.token_hash AND f.date >= today;
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_after_insert AFTER INSERT ON api_keys
    REFERENCING NEW TABLE AS new_keys FOR EACH STATEMENT EXECUTE FUNCTION api_keys_track_new_owners();
CREATE TRIGGER api_keys_after_update AFTER UPDATE ON api_keys
    REFERENCING NEW TABLE AS new_keys OLD TABLE AS old_keys
    FOR EACH STATEMENT EXECUTE FUNCTION api_keys_track_owner_changes();

-- Who did what: refreshes, syncs, exports, downloads.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    arguments   jsonb NOT NULL DEFAULT '{}'::jsonb,
    outcome     text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
