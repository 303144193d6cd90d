-- Tamper evidence (issue 17, item 5): an HMAC-SHA256, under the deployment's integrity key
-- in the key store, over each consent-ledger row and over each entry's status. Someone who
-- can write the database file but has no key cannot forge a consent row or mark a draft
-- complete without the check failing (storage/integrity.py). Rows written before this
-- migration are signed once, the first time the store opens with the integrity key.
ALTER TABLE consent_ledger ADD COLUMN mac BLOB;
ALTER TABLE entries ADD COLUMN status_mac BLOB;
