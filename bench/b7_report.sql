-- B7 anchor: the aggregates of GetFunnelReport (pipeline 'sales', every
-- opportunity created before now) as one hand-written query over the same
-- columns funnel reads: a history row leaving an open opportunity ends the
-- visit begun at its previous_at; furthest_stage is kept per opportunity.
-- JIT off and byte-order grouping, as funnel does: both make it faster.
SET jit = off;
SET work_mem = '64MB';
WITH scope AS (
    SELECT id, stage, status, created_at, closed_at, currency_code, amount_minor, furthest_stage
      FROM opportunities WHERE pipeline = 'sales'),
visits AS (
    SELECT t.from_stage COLLATE "C" AS stage,
           CASE WHEN t.kind IN ('advanced', 'won') THEN 'advanced' ELSE t.kind END COLLATE "C" AS outcome,
           t.occurred_at - t.previous_at AS duration
      FROM transitions t JOIN scope s ON s.id = t.opportunity_id
     WHERE t.from_status = 'open')
SELECT 'visits', stage, outcome, COUNT(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY duration),
       percentile_disc(0.9) WITHIN GROUP (ORDER BY duration), NULL::float8
  FROM visits GROUP BY stage, outcome
UNION ALL
SELECT 'status', s.status, st.position::text, COUNT(*), NULL, NULL, NULL
  FROM scope s LEFT JOIN stages st ON st.pipeline = 'sales' AND st.key = s.furthest_stage
 GROUP BY s.status, st.position
UNION ALL
SELECT 'leak_reasons', t.to_stage, t.reason, COUNT(*), NULL, NULL, NULL
  FROM transitions t JOIN scope s ON s.id = t.opportunity_id
 WHERE t.kind = 'leaked' GROUP BY t.to_stage, t.reason
UNION ALL
SELECT 'open', s.stage, s.currency_code, COUNT(*), SUM(s.amount_minor)::bigint, NULL, SUM(s.amount_minor * cs.p_win)
  FROM scope s LEFT JOIN current_scores cs ON cs.opportunity_id = s.id WHERE s.status = 'open'
 GROUP BY s.stage, s.currency_code
UNION ALL
SELECT 'time_to_win', NULL, NULL, COUNT(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY closed_at - created_at), NULL, NULL
  FROM scope WHERE status = 'won';
