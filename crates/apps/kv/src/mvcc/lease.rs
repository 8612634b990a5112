//! Leases as state agreed in the log: granted, renewed, revoked and expired by commands every
//! node applies in the same order, so no node's clock decides alone.
//!
//! What is here is the agreed part: which leases exist, their granted TTL, the keys attached
//! to each, and how many renewals each has had. Time is not: a node proposes an expiry once
//! its own monotonic timer, started when it applied the lease's last renewal, has run past the
//! TTL and a margin, naming the renewal count it saw; the expiry applies only if no renewal
//! was agreed since ([`Mvcc::expire`]). So a renewal agreed before the expiry always wins, and
//! no lease ends before every node's timer has had the full TTL.

use bytes::Bytes;
use imbl::OrdSet;
use serde::{Deserialize, Serialize};

use crate::cautious;

use super::txn::Writer;
use super::{DeleteRequest, KeyRange, Mvcc, MvccError, Op, Revision};

/// A lease (etcd's lease, its lifetime aside).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Its id (positive).
    pub id: i64,
    /// The TTL it was granted, seconds.
    pub ttl: i64,
    /// The keys attached to it.
    #[serde(deserialize_with = "cautious::ord_set")]
    pub keys: OrdSet<Bytes>,
    /// Renewals agreed so far.
    pub renewals: u64,
}

impl Mvcc {
    /// Grants lease `id` (chosen by the proposer, positive) with `ttl` seconds.
    ///
    /// # Errors
    /// [`MvccError::LeaseExists`] if the id is taken, [`MvccError::LeaseNotFound`] for an id
    /// that is not positive.
    pub fn grant(&mut self, id: i64, ttl: i64) -> Result<(), MvccError> {
        if id <= 0 {
            return Err(MvccError::LeaseNotFound);
        }
        if self.leases.contains_key(&id) {
            return Err(MvccError::LeaseExists);
        }
        self.leases.insert(
            id,
            Lease {
                id,
                ttl,
                keys: OrdSet::new(),
                renewals: 0,
            },
        );
        Ok(())
    }

    /// A renewal (a keep-alive) of lease `id`: its renewal count, after.
    ///
    /// # Errors
    /// [`MvccError::LeaseNotFound`].
    pub fn renew(&mut self, id: i64) -> Result<u64, MvccError> {
        let lease = self.leases.get_mut(&id).ok_or(MvccError::LeaseNotFound)?;
        lease.renewals += 1;
        Ok(lease.renewals)
    }

    /// Revokes lease `id`: its keys are deleted, all at one revision (none if it had no
    /// keys). The revision after.
    ///
    /// # Errors
    /// [`MvccError::LeaseNotFound`].
    pub fn revoke(&mut self, id: i64) -> Result<Revision, MvccError> {
        let lease = self.leases.get(&id).ok_or(MvccError::LeaseNotFound)?;
        // Deleted as one write, however many keys (no transaction's budget applies).
        let keys: Vec<Bytes> = lease.keys.iter().cloned().collect();
        let mut writer = Writer::new(self);
        for key in keys {
            writer.run(&Op::Delete(DeleteRequest {
                range: KeyRange::key(key),
                prev_kv: false,
            }))?;
        }
        let (kvs, mut leases, changes) = writer.finish();
        leases.remove(&id);
        self.commit(kvs, leases, changes);
        Ok(self.revision)
    }

    /// Expires lease `id` if it has had exactly `renewals_seen` renewals, as the proposing
    /// node saw when its timer ran out: the revision after, or `None` if the lease is gone or
    /// was renewed since (the expiry is then void).
    ///
    /// # Errors
    /// None in practice: revoking an existing lease cannot fail.
    pub fn expire(&mut self, id: i64, renewals_seen: u64) -> Result<Option<Revision>, MvccError> {
        match self.leases.get(&id) {
            Some(lease) if lease.renewals == renewals_seen => self.revoke(id).map(Some),
            _ => Ok(None),
        }
    }

    /// Lease `id`, if it exists.
    #[must_use]
    pub fn lease(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// Every lease, by id.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }
}
