-- v6 (SQLite): deliveries survive a restart. A queued delivery is leased
-- by the process sending it (lease_owner, lease_expires_at by rm_now(),
-- renewed while its retries go on); one whose lease lapsed -- its process
-- died -- is claimed by another server, or by the next start, and sent
-- again under the same id (receivers deduplicate on it). Rows queued by
-- an older binary have no lease: they are claimable once they have not
-- changed for a lease period. Keep in step with postgresql/0006.

ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE deliveries ADD COLUMN lease_expires_at TEXT;
