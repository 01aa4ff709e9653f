-- B3 anchor: a keyset page of 50 (one more to know whether a next page exists).
\set k random(1, :ids)
SELECT * FROM opportunities
 WHERE pipeline = 'sales' AND id > (SELECT id FROM bench_ids WHERE n = :k)
 ORDER BY id LIMIT 51;
