-- The yardstick of bench/bench_pipeline.py: the main marts computed by plain DuckDB SQL
-- straight from the landing drops (UTC days). {landing} and {out} are filled in by the bench.
-- Each mart is written to {out}/<mart>.parquet and compared with the pipeline's table.

CREATE TEMP TABLE tickets AS
SELECT * EXCLUDE (filename) FROM read_csv('{landing}/tickets/*.csv', header = true, filename = true,
    columns = {{'ticket_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'created_at': 'TIMESTAMPTZ',
               'channel': 'VARCHAR', 'topic': 'VARCHAR', 'priority': 'VARCHAR',
               'agent_group': 'VARCHAR', 'journey_stage': 'VARCHAR'}})
QUALIFY row_number() OVER (PARTITION BY ticket_id ORDER BY filename DESC) = 1;

CREATE TEMP TABLE events AS
SELECT DISTINCT ticket_id, event_at, event_type, actor
FROM read_csv('{landing}/ticket_events/*.csv', header = true,
    columns = {{'ticket_id': 'VARCHAR', 'event_at': 'TIMESTAMPTZ', 'event_type': 'VARCHAR',
               'actor': 'VARCHAR', 'handle_seconds': 'DOUBLE'}});

CREATE TEMP TABLE days AS
SELECT DISTINCT CAST(timezone('UTC', created_at) AS DATE) AS date FROM tickets;

-- agg_daily_tickets_by_topic: tickets created per day and topic.
COPY (
    SELECT CAST(timezone('UTC', created_at) AS DATE) AS date, topic, count(*) AS tickets_created
    FROM tickets GROUP BY ALL
) TO '{out}/tickets_by_topic.parquet';

-- agg_daily_resolution_time: first resolution (solved or closed) per day x channel x priority.
COPY (
    WITH firsts AS (
        SELECT ticket_id,
               min(event_at) FILTER (WHERE event_type IN ('solved', 'closed')) AS resolved_at
        FROM events JOIN tickets USING (ticket_id)
        WHERE event_at >= created_at GROUP BY ticket_id
    )
    SELECT CAST(timezone('UTC', resolved_at) AS DATE) AS date, channel, priority,
           count(*) AS tickets_resolved,
           median(epoch(resolved_at - created_at) / 60) AS resolution_minutes_median
    FROM firsts JOIN tickets USING (ticket_id)
    WHERE resolved_at IS NOT NULL GROUP BY ALL
) TO '{out}/resolution_time.parquet';

-- agg_daily_ticket_activity: created, solved (tickets with a solve or close on the day),
-- reopened (tickets with a reopen on the day) per day x channel x priority.
COPY (
    WITH on_day AS (
        SELECT CAST(timezone('UTC', event_at) AS DATE) AS date, ticket_id, event_type
        FROM events JOIN tickets USING (ticket_id) WHERE event_at >= created_at
    ),
    resolutions AS (  -- a close after a solve (no reopen between) is the same resolution
        SELECT CAST(timezone('UTC', event_at) AS DATE) AS date, ticket_id, event_type,
               lag(event_type) OVER (PARTITION BY ticket_id ORDER BY event_at) AS before
        FROM events JOIN tickets USING (ticket_id)
        WHERE event_at >= created_at AND event_type IN ('solved', 'closed', 'reopened')
    ),
    solved AS (
        SELECT date, ticket_id, 1 AS solved FROM resolutions
        WHERE event_type IN ('solved', 'closed')
          AND coalesce(before NOT IN ('solved', 'closed'), true) GROUP BY ALL
    ),
    reopened AS (
        SELECT date, ticket_id, 1 AS reopened FROM on_day
        WHERE event_type = 'reopened' GROUP BY ALL
    ),
    created AS (
        SELECT CAST(timezone('UTC', created_at) AS DATE) AS date, ticket_id, 1 AS created
        FROM tickets
    ),
    touched AS (
        SELECT * FROM created FULL JOIN solved USING (date, ticket_id)
        FULL JOIN reopened USING (date, ticket_id)
    )
    SELECT date, channel, priority, coalesce(sum(created), 0) AS tickets_created,
           coalesce(sum(solved), 0) AS tickets_solved,
           coalesce(sum(reopened), 0) AS tickets_reopened
    FROM touched JOIN tickets USING (ticket_id) GROUP BY ALL
) TO '{out}/ticket_activity.parquet';

-- agg_daily_backlog: tickets open at the end of each day (the last status event before
-- the day's end is not solved or closed) per channel x priority.
COPY (
    WITH status_changes AS (
        SELECT ticket_id, event_at,
               event_type IN ('solved', 'closed') AS done
        FROM events JOIN tickets USING (ticket_id)
        WHERE event_type IN ('open', 'pending', 'on_hold', 'reopened', 'solved', 'closed')
          AND event_at >= created_at
    ),
    spans AS (
        SELECT ticket_id, created_at AS since, false AS done FROM tickets
        UNION ALL SELECT ticket_id, event_at, done FROM status_changes
    ),
    open_spans AS (
        SELECT ticket_id, since,
               lead(since) OVER (PARTITION BY ticket_id ORDER BY since) AS until, done
        FROM spans
    )
    SELECT d.date, t.channel, t.priority, count(*) AS open_tickets
    FROM days d
    JOIN open_spans s
      ON s.since < CAST(d.date + 1 AS TIMESTAMPTZ)
     AND (s.until IS NULL OR s.until >= CAST(d.date + 1 AS TIMESTAMPTZ))
    JOIN tickets t USING (ticket_id)
    WHERE NOT s.done GROUP BY ALL
) TO '{out}/backlog.parquet';

CREATE TEMP TABLE answers AS
SELECT * FROM read_json('{landing}/survey_responses/*.jsonl', format = 'newline_delimited',
    columns = {{'response_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'ticket_id': 'VARCHAR',
               'survey_type': 'VARCHAR', 'score': 'DOUBLE', 'submitted_at': 'TIMESTAMPTZ'}});

-- agg_daily_nps and agg_daily_csat: the day's answers (window 1, all customers).
COPY (
    SELECT CAST(timezone('UTC', submitted_at) AS DATE) AS date, count(*) AS responses,
           100.0 * (count(*) FILTER (WHERE score >= 9) - count(*) FILTER (WHERE score <= 6))
               / count(*) AS nps
    FROM answers WHERE survey_type = 'nps' GROUP BY ALL
) TO '{out}/nps.parquet';
COPY (
    SELECT CAST(timezone('UTC', submitted_at) AS DATE) AS date, count(*) AS responses,
           count(*) FILTER (WHERE score >= 4) / count(*) AS csat_rate
    FROM answers WHERE survey_type = 'csat' GROUP BY ALL
) TO '{out}/csat.parquet';

-- agg_daily_churn: customers churned per day (newest version of each customer).
COPY (
    WITH customers AS (
        SELECT * FROM read_csv('{landing}/customers/*.csv', header = true, filename = true,
            columns = {{'customer_id': 'VARCHAR', 'signed_up_at': 'TIMESTAMPTZ',
                       'churned_at': 'TIMESTAMPTZ', 'plan': 'VARCHAR', 'segment': 'VARCHAR',
                       'region': 'VARCHAR'}})
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY filename DESC) = 1
    )
    SELECT d.date, count(c.customer_id) AS customers_churned
    FROM days d LEFT JOIN customers c
      ON CAST(timezone('UTC', c.churned_at) AS DATE) = d.date
    GROUP BY ALL
) TO '{out}/churn.parquet';
