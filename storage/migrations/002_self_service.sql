-- Wave check-ins record which wave they answer; answers carry flags such as 'signpost'
-- (an answer that triggered safety signposting is never quoted or shown to anyone else).
ALTER TABLE entries ADD COLUMN wave TEXT;
ALTER TABLE answers ADD COLUMN flags TEXT NOT NULL DEFAULT '';
CREATE INDEX entries_flow_status ON entries (flow, status);
ALTER TABLE pairs ADD COLUMN closed_at TEXT;
