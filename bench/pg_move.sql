-- B1/B4/B8 anchor: the transaction MoveOpportunity stands for, hand-written:
-- one conditional UPDATE ... RETURNING (with the previous change's time, which
-- the history row records) and the history INSERT.
\set k random(1, :ids)
BEGIN;
UPDATE opportunities
   SET previous_stage = stage,
       stage = CASE WHEN stage = 'prospect' THEN 'qualified' ELSE 'prospect' END,
       stage_entered_at = (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
       last_change_at = (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
       sequence = sequence + 1,
       version = version + 1,
       updated_at = (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
  FROM (SELECT last_change_at AS previous_at FROM opportunities WHERE id = (SELECT id FROM bench_ids WHERE n = :k)) old
 WHERE id = (SELECT id FROM bench_ids WHERE n = :k) AND status = 'open'
RETURNING id AS oid, sequence AS seq, previous_stage AS from_stage, stage AS to_stage, updated_at AS at, old.previous_at
\gset
INSERT INTO transitions (opportunity_id, sequence, from_stage, to_stage, from_status, to_status, kind,
                         occurred_at, recorded_at, actor, reason, note, previous_at)
VALUES (:oid, :seq, :from_stage, :to_stage, 'open', 'open', 'advanced', :at, :at, 'pgbench', '', '', :previous_at);
END;
