-- How many fetches in a row left a day unverified: the day cache retries such a day on the next query
-- while this is below its budget, then only as often as any open day, and reports it all along.
ALTER TABLE usage_days ADD COLUMN unverified_fetches integer NOT NULL DEFAULT 0;
