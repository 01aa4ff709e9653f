-- B7 anchor: the aggregates of GetFunnelReport (pipeline 'sales', every
-- opportunity created before now) as one hand-written query.
WITH scope AS (
    SELECT id, stage, status, created_at, closed_at, currency_code, amount_minor
      FROM opportunities WHERE pipeline = 'sales'),
steps AS (
    SELECT t.opportunity_id, t.to_stage AS stage, t.to_status AS status, t.occurred_at AS entered_at, t.kind,
           t.reason, LEAD(t.kind) OVER w AS next_kind, LEAD(t.occurred_at) OVER w AS next_at
      FROM transitions t JOIN scope s ON s.id = t.opportunity_id
    WINDOW w AS (PARTITION BY t.opportunity_id ORDER BY t.sequence)),
visits AS (
    SELECT stage,
           CASE WHEN next_kind IN ('advanced', 'won') THEN 'advanced' WHEN next_kind = 'moved_back' THEN 'moved_back'
                WHEN next_kind = 'leaked' THEN 'leaked' ELSE 'open' END AS outcome,
           next_at - entered_at AS duration
      FROM steps WHERE status = 'open'),
furthest AS (
    SELECT MAX(st.position) AS furthest FROM steps JOIN stages st ON st.pipeline = 'sales' AND st.key = steps.stage
     GROUP BY steps.opportunity_id)
SELECT 'visits', stage, outcome, COUNT(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY duration),
       percentile_disc(0.9) WITHIN GROUP (ORDER BY duration), NULL::float8
  FROM visits GROUP BY stage, outcome
UNION ALL
SELECT 'furthest', furthest::text, NULL, COUNT(*), NULL, NULL, NULL FROM furthest GROUP BY furthest
UNION ALL
SELECT 'leak_reasons', stage, reason, COUNT(*), NULL, NULL, NULL FROM steps WHERE kind = 'leaked' GROUP BY stage, reason
UNION ALL
SELECT 'open', s.stage, s.currency_code, COUNT(*), SUM(s.amount_minor)::bigint, NULL, SUM(s.amount_minor * cs.p_win)
  FROM scope s LEFT JOIN current_scores cs ON cs.opportunity_id = s.id WHERE s.status = 'open'
 GROUP BY s.stage, s.currency_code
UNION ALL
SELECT 'status', status, NULL, COUNT(*), NULL, NULL, NULL FROM scope GROUP BY status
UNION ALL
SELECT 'time_to_win', NULL, NULL, COUNT(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY closed_at - created_at), NULL, NULL
  FROM scope WHERE status = 'won';
