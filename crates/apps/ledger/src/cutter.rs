//! Cutting blocks from the agreed sequence, the same on every node with no leader: Fabric's
//! batch rules (max message count, preferred and absolute max bytes) applied in delivery
//! order, and a batch timeout measured in *agreed* time (the time carried in the log, the same
//! on every replica at the same GSN), never in a node's own clock. An idle channel's timeout
//! still fires: a node whose pending batch is due proposes a tick, whose delivery advances the
//! agreed time everywhere.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Fabric's `BatchSize` and `BatchTimeout`; the defaults are Fabric's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchConfig {
    /// Most transactions in a block (500).
    pub max_message_count: usize,
    /// A transaction larger than this is refused (10 MB).
    pub absolute_max_bytes: usize,
    /// A block is cut before it would exceed this; a larger transaction gets a block of its
    /// own (2 MB).
    pub preferred_max_bytes: usize,
    /// A pending batch is cut once it has waited this long in agreed time (2 s).
    pub batch_timeout_ns: u64,
}

impl Default for BatchConfig {
    fn default() -> BatchConfig {
        BatchConfig {
            max_message_count: 500,
            absolute_max_bytes: 10 * 1024 * 1024,
            preferred_max_bytes: 2 * 1024 * 1024,
            batch_timeout_ns: 2_000_000_000,
        }
    }
}

/// The batch being filled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockCutter {
    pending: Vec<Bytes>,
    pending_bytes: usize,
    /// Agreed time at which the first pending transaction was delivered.
    pending_since: Option<u64>,
}

impl BlockCutter {
    /// Takes the next transaction in agreed order at agreed time `now`; returns the batches
    /// cut (zero, one or two), in order. A transaction over `absolute_max_bytes` is dropped
    /// (the API refuses it before it is ever proposed; one that is proposed anyway is never
    /// put in a block).
    pub fn ordered(&mut self, config: &BatchConfig, tx: Bytes, now: u64) -> Vec<Vec<Bytes>> {
        let mut cut = self.on_time(config, now);
        let size = tx.len();
        if size > config.absolute_max_bytes {
            return cut;
        }
        if size > config.preferred_max_bytes {
            cut.extend(self.cut());
            cut.push(vec![tx]);
            return cut;
        }
        if self.pending_bytes + size > config.preferred_max_bytes {
            cut.extend(self.cut());
        }
        if self.pending.is_empty() {
            self.pending_since = Some(now);
        }
        self.pending_bytes += size;
        self.pending.push(tx);
        if self.pending.len() >= config.max_message_count {
            cut.extend(self.cut());
        }
        cut
    }

    /// Agreed time moved to `now` (any delivery: a transaction or a tick): cuts the pending
    /// batch if it has waited the batch timeout.
    pub fn on_time(&mut self, config: &BatchConfig, now: u64) -> Vec<Vec<Bytes>> {
        match self.pending_since {
            Some(since) if now.saturating_sub(since) >= config.batch_timeout_ns => {
                self.cut().into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// When (agreed time) the pending batch falls due, if there is one: a node whose clock
    /// passes it proposes a tick.
    #[must_use]
    pub fn due_at(&self, config: &BatchConfig) -> Option<u64> {
        self.pending_since
            .map(|s| s.saturating_add(config.batch_timeout_ns))
    }

    /// Transactions waiting for the next block.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn cut(&mut self) -> Option<Vec<Bytes>> {
        if self.pending.is_empty() {
            return None;
        }
        self.pending_bytes = 0;
        self.pending_since = None;
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(n: usize) -> Bytes {
        Bytes::from(vec![7; n])
    }

    fn small() -> BatchConfig {
        BatchConfig {
            max_message_count: 3,
            absolute_max_bytes: 100,
            preferred_max_bytes: 50,
            batch_timeout_ns: 1_000,
        }
    }

    #[test]
    fn a_block_is_cut_at_the_message_count() {
        let (c, mut cutter) = (small(), BlockCutter::default());
        assert!(cutter.ordered(&c, tx(1), 0).is_empty());
        assert!(cutter.ordered(&c, tx(1), 1).is_empty());
        let cut = cutter.ordered(&c, tx(1), 2);
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].len(), 3);
        assert_eq!(cutter.pending(), 0);
    }

    #[test]
    fn preferred_bytes_cut_before_and_an_oversized_transaction_goes_alone() {
        let (c, mut cutter) = (small(), BlockCutter::default());
        assert!(cutter.ordered(&c, tx(30), 0).is_empty());
        // 30 + 30 > 50: the first is cut, the second starts the next batch.
        let cut = cutter.ordered(&c, tx(30), 1);
        assert_eq!(cut, vec![vec![tx(30)]]);
        // Over the preferred size: the pending batch, then it alone.
        let cut = cutter.ordered(&c, tx(60), 2);
        assert_eq!(cut, vec![vec![tx(30)], vec![tx(60)]]);
        // Over the absolute maximum: never in a block.
        assert!(cutter.ordered(&c, tx(101), 3).is_empty());
        assert_eq!(cutter.pending(), 0);
    }

    #[test]
    fn the_timeout_runs_on_agreed_time_and_a_tick_cuts_an_idle_batch() {
        let (c, mut cutter) = (small(), BlockCutter::default());
        assert!(cutter.ordered(&c, tx(1), 10).is_empty());
        assert_eq!(cutter.due_at(&c), Some(1_010));
        assert!(cutter.on_time(&c, 1_009).is_empty());
        assert_eq!(cutter.on_time(&c, 1_010), vec![vec![tx(1)]]);
        assert_eq!(cutter.due_at(&c), None);
        // A transaction delivered after the timeout passed cuts the old batch first.
        assert!(cutter.ordered(&c, tx(1), 2_000).is_empty());
        let cut = cutter.ordered(&c, tx(2), 3_500);
        assert_eq!(cut, vec![vec![tx(1)]]);
        assert_eq!(cutter.pending(), 1);
    }
}
