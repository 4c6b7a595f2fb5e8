-- The parameters (by `pkey`) of the date, number and quantity index tables for which a resource
-- has, or once had, more than one index row: a Timing's events, a blood pressure's components.
-- Where no resource has more than one, a resource's place in an order on that parameter is
-- that of its one row, and a sorted search with a criterion on the same parameter may start
-- its walk of the index where the criterion's rows start (ficus.search.ordered). Writes add a
-- key in the transaction that first stores such a resource; no write removes one.

CREATE TABLE search_repeated_key (pkey BIGINT PRIMARY KEY);
INSERT INTO search_repeated_key (pkey)
SELECT pkey FROM idx_date GROUP BY pkey, rid HAVING COUNT(*) > 1
UNION SELECT pkey FROM idx_number GROUP BY pkey, rid HAVING COUNT(*) > 1
UNION SELECT pkey FROM idx_quantity GROUP BY pkey, rid HAVING COUNT(*) > 1;
