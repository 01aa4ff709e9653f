-- B3 anchor: one opportunity by key.
\set k random(1, :ids)
SELECT * FROM opportunities WHERE id = (SELECT id FROM bench_ids WHERE n = :k);
