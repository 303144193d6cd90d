-- Programmes as they run (issue 15): a coordinator may withdraw an invite before it is used
-- (revoked_at); a withdrawn code opens nothing, like a used or expired one. No personal data.
ALTER TABLE invites ADD COLUMN revoked_at TEXT;
