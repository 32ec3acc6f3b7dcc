-- Teams (issue 16): LiteLLM's teams, which team a key belonged to from which UTC day on, and the team of
-- each fact. A key's team is a property of the key on a day, kept exactly as its owner is (migration 0001):
-- triggers on api_keys record every change, so a key that moves keeps its earlier spend under its earlier
-- team, whoever writes the directory. usage_facts.team_id is maintained like user_id, so byTeam and a
-- teamIds filter read the facts without a join, and the other queries are unchanged.

-- LiteLLM's teams (syncDirectory, from /team/list). A team LiteLLM no longer lists is kept with its alias
-- (deleted_at: when a sync first missed it), so its past usage keeps its name.
CREATE TABLE teams (
    id          text PRIMARY KEY,
    alias       text,
    updated_at  timestamptz NOT NULL DEFAULT now(),  -- when a sync last wrote the row
    deleted_at  timestamptz
);

-- Which team a key belonged to from which UTC day on (NULL: none).
CREATE TABLE api_key_teams (
    token_hash  text NOT NULL,
    valid_from  date NOT NULL,
    team_id     text,
    PRIMARY KEY (token_hash, valid_from)
);

-- The team of a fact: the key's team on that day; 'no-team' for a key without one, outside the directory,
-- or for spend without a key.
CREATE FUNCTION attributed_team(p_api_key text, p_date date) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        (SELECT t.team_id FROM api_key_teams t
          WHERE t.token_hash = p_api_key AND t.valid_from <= p_date
          ORDER BY t.valid_from DESC LIMIT 1),
        'no-team')
$$;

ALTER TABLE usage_facts ADD COLUMN team_id text NOT NULL DEFAULT 'no-team';

CREATE FUNCTION api_keys_track_new_teams() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO api_key_teams (token_hash, valid_from, team_id)
    SELECT n.token_hash, '-infinity'::date, n.team_id FROM new_keys n
    ON CONFLICT (token_hash, valid_from) DO UPDATE SET team_id = EXCLUDED.team_id;
    UPDATE usage_facts f SET team_id = attributed_team(f.api_key, f.date)
      FROM new_keys n
     WHERE f.api_key = n.token_hash AND f.team_id IS DISTINCT FROM attributed_team(f.api_key, f.date);
    RETURN NULL;
END $$;

CREATE FUNCTION api_keys_track_team_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    INSERT INTO api_key_teams (token_hash, valid_from, team_id)
    SELECT n.token_hash, today, n.team_id
      FROM new_keys n JOIN old_keys o ON o.id = n.id
     WHERE o.team_id IS DISTINCT FROM n.team_id OR o.token_hash <> n.token_hash
    ON CONFLICT (token_hash, valid_from) DO UPDATE SET team_id = EXCLUDED.team_id;
    UPDATE usage_facts f SET team_id = attributed_team(f.api_key, f.date)
      FROM new_keys n JOIN old_keys o ON o.id = n.id
     WHERE (o.team_id IS DISTINCT FROM n.team_id OR o.token_hash <> n.token_hash)
       AND f.api_key = n.token_hash AND f.date >= today
       AND f.team_id IS DISTINCT FROM attributed_team(f.api_key, f.date);
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_teams_after_insert AFTER INSERT ON api_keys
    REFERENCING NEW TABLE AS new_keys FOR EACH STATEMENT EXECUTE FUNCTION api_keys_track_new_teams();
CREATE TRIGGER api_keys_teams_after_update AFTER UPDATE ON api_keys
    REFERENCING NEW TABLE AS new_keys OLD TABLE AS old_keys
    FOR EACH STATEMENT EXECUTE FUNCTION api_keys_track_team_changes();

-- The keys already in the directory: their team from the start, and their facts attributed.
INSERT INTO api_key_teams (token_hash, valid_from, team_id)
SELECT token_hash, '-infinity'::date, team_id FROM api_keys;
UPDATE usage_facts f SET team_id = attributed_team(f.api_key, f.date)
 WHERE f.api_key IN (SELECT token_hash FROM api_key_teams WHERE team_id IS NOT NULL);
