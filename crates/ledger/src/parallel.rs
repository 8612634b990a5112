//! Validation in parallel on the locking scheduler (`synod-exec`), with exactly the result of
//! the serial [`crate::Channel`].
//!
//! Each transaction of a cut block is two commands. The first checks its signature (the
//! costly part, about 40 µs, which depends on nothing else) and locks only the transaction's
//! own result slot, so every signature of a block is checked at once whatever the keys. The
//! second judges it against the state: it locks the keys it reads (shared), the keys it writes,
//! its id and its result slot (exclusive); a transaction with a range read locks everything
//! (the keys a range may gain are not known in advance). Conflicting transactions are thus
//! judged in block order, which is what MVCC validation needs: each against everything before
//! it. Sealing a block (flags, header, commit hash) is an exclusive command after its
//! transactions. `tests/parallel.rs` compares blocks,
//! statuses and state with the serial channel on random workloads.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use imbl::{OrdMap, Vector};
use synod_exec::{Application, Ctx, Executor, Job, KeyedState, Locks, WorkerPool};

use crate::block::{Block, BlockMetadata, commit_hash, genesis_block};
use crate::channel::TxStatus;
use crate::cutter::{BatchConfig, BlockCutter};
use crate::merkle::Hash;
use crate::tx::{Key, Transaction, ValidationCode, Version};
use crate::validate::{View, judge};

/// What a ledger command locks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LedgerKey {
    /// A world-state key (first, so a range of keys is a range of these).
    State(Key),
    /// A transaction id.
    TxId(String),
    /// The result slot of transaction `index` of block `block`.
    Result(u64, u32),
}

/// A ledger command.
#[derive(Clone, Debug)]
pub enum LedgerCommand {
    /// Check the signature of transaction `index` of block `block`.
    Verify {
        /// Its block.
        block: u64,
        /// Its index in the block.
        index: u32,
        /// The transaction.
        tx: Arc<Transaction>,
    },
    /// Judge transaction `index` of block `block` (`None`: it did not decode; its signature
    /// was checked by the `Verify` before it) and apply its writes if it is valid.
    Validate {
        /// Its block.
        block: u64,
        /// Its index in the block.
        index: u32,
        /// The transaction.
        tx: Option<Arc<Transaction>>,
    },
    /// Seal block `number`: its transactions are all validated.
    Seal {
        /// The block.
        number: u64,
        /// Its transactions, encoded.
        data: Vec<Bytes>,
        /// Agreed time when it was cut.
        time: u64,
    },
}

/// What a ledger command returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerOutput {
    /// A signature was checked.
    Verified(bool),
    /// A transaction's validation code.
    Validated(ValidationCode),
    /// A block was sealed.
    Sealed(u64),
}

#[derive(Clone, Debug)]
struct TxResult {
    code: ValidationCode,
    writes: Vec<(Key, Option<Bytes>)>,
}

#[derive(Clone, Debug, Default)]
struct Chain {
    blocks: Vec<Block>,
    header_hashes: Vec<Hash>,
    commit: Hash,
}

/// A channel's state for the scheduler.
#[derive(Debug)]
pub struct LedgerApp {
    world: KeyedState<LedgerKey, (Bytes, Version)>,
    history: KeyedState<LedgerKey, Vector<(Version, Option<Bytes>)>>,
    txs: KeyedState<LedgerKey, TxStatus>,
    results: KeyedState<LedgerKey, TxResult>,
    /// Touched only by `Seal` (which holds every lock) and by queries.
    chain: Mutex<Chain>,
}

/// A copy of a [`LedgerApp`]'s state.
#[derive(Clone, Debug)]
pub struct LedgerSnapshot {
    world: OrdMap<LedgerKey, (Bytes, Version)>,
    history: OrdMap<LedgerKey, Vector<(Version, Option<Bytes>)>>,
    txs: OrdMap<LedgerKey, TxStatus>,
    chain: Chain,
}

struct AppView<'a, 'c> {
    app: &'a LedgerApp,
    ctx: &'a Ctx<'c, LedgerKey>,
}

impl View for AppView<'_, '_> {
    fn version(&self, key: &Key) -> Option<Version> {
        let key = LedgerKey::State(key.clone());
        self.app.world.get(self.ctx, &key).map(|(_, v)| v)
    }

    fn id_taken(&self, id: &str) -> bool {
        let key = LedgerKey::TxId(id.to_string());
        self.app.txs.get(self.ctx, &key).is_some()
    }

    fn range(&self, start: &Key, end: &Key) -> Vec<(Key, Version)> {
        let (lo, hi) = (
            LedgerKey::State(start.clone()),
            LedgerKey::State(end.clone()),
        );
        self.app
            .world
            .scan(self.ctx)
            .range(lo..hi)
            .filter_map(|(k, (_, v))| match k {
                LedgerKey::State(k) => Some((k.clone(), *v)),
                _ => None,
            })
            .collect()
    }
}

impl LedgerApp {
    /// A channel holding only its genesis block.
    #[must_use]
    pub fn genesis(genesis: Bytes, time: u64) -> LedgerApp {
        let block = genesis_block(genesis, time);
        let chain = Chain {
            header_hashes: vec![block.header.hash()],
            commit: block.metadata.commit_hash,
            blocks: vec![block],
        };
        LedgerApp {
            world: KeyedState::new(OrdMap::new()),
            history: KeyedState::new(OrdMap::new()),
            txs: KeyedState::new(OrdMap::new()),
            results: KeyedState::new(OrdMap::new()),
            chain: Mutex::new(chain),
        }
    }

    fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every block, from genesis (a copy: call when the executor is idle for a consistent
    /// view).
    #[must_use]
    pub fn blocks(&self) -> Vec<Block> {
        self.chain().blocks.clone()
    }

    /// The commit hash after the last sealed block.
    #[must_use]
    pub fn commit_hash(&self) -> Hash {
        self.chain().commit
    }

    /// A transaction's outcome (a stale read while blocks are being validated).
    #[must_use]
    pub fn tx_status(&self, id: &str) -> Option<TxStatus> {
        self.txs
            .copy()
            .get(&LedgerKey::TxId(id.to_string()))
            .copied()
    }

    /// A key's value and version (a stale read while blocks are being validated).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<(Bytes, Version)> {
        self.world
            .copy()
            .get(&LedgerKey::State(key.to_string()))
            .cloned()
    }

    fn verify(&self, ctx: &Ctx<'_, LedgerKey>, block: u64, index: u32, tx: &Transaction) -> bool {
        let valid = tx.signature_valid();
        let verdict = TxResult {
            code: if valid {
                ValidationCode::NotValidated
            } else {
                ValidationCode::BadCreatorSignature
            },
            writes: Vec::new(),
        };
        self.results
            .insert(ctx, LedgerKey::Result(block, index), verdict);
        valid
    }

    fn validate(
        &self,
        ctx: &Ctx<'_, LedgerKey>,
        block: u64,
        index: u32,
        tx: Option<Arc<Transaction>>,
    ) -> ValidationCode {
        let Some(tx) = tx else {
            let result = TxResult {
                code: ValidationCode::BadPayload,
                writes: Vec::new(),
            };
            self.results
                .insert(ctx, LedgerKey::Result(block, index), result);
            return ValidationCode::BadPayload;
        };
        let signature_valid = self
            .results
            .get(ctx, &LedgerKey::Result(block, index))
            .is_some_and(|r| r.code != ValidationCode::BadCreatorSignature);
        let code = judge(&tx, signature_valid, &AppView { app: self, ctx });
        if !matches!(
            code,
            ValidationCode::BadCreatorSignature | ValidationCode::DuplicateTxid
        ) {
            let status = TxStatus { block, index, code };
            self.txs
                .insert(ctx, LedgerKey::TxId(tx.body.id.clone()), status);
        }
        let mut writes = Vec::new();
        if code == ValidationCode::Valid {
            let version = Version { block, tx: index };
            for (key, value) in tx.body.writes.iter().cloned() {
                let k = LedgerKey::State(key.clone());
                match &value {
                    Some(v) => {
                        self.world.insert(ctx, k.clone(), (v.clone(), version));
                    }
                    None => {
                        self.world.remove(ctx, &k);
                    }
                }
                let mut h = self.history.get(ctx, &k).unwrap_or_default();
                h.push_back((version, value.clone()));
                self.history.insert(ctx, k, h);
                writes.push((key, value));
            }
        }
        self.results.insert(
            ctx,
            LedgerKey::Result(block, index),
            TxResult { code, writes },
        );
        code
    }

    fn seal(&self, ctx: &Ctx<'_, LedgerKey>, number: u64, data: Vec<Bytes>, time: u64) -> u64 {
        let mut flags = Vec::with_capacity(data.len());
        let mut writes = Vec::new();
        for index in 0..data.len() as u32 {
            let result = self
                .results
                .remove(ctx, &LedgerKey::Result(number, index))
                .expect("every transaction of a block is validated before it is sealed");
            flags.push(result.code);
            writes.extend(result.writes);
        }
        let mut chain = self.chain();
        let previous = chain.header_hashes.last().copied().unwrap_or([0; 32]);
        let header = Block::header_for(number, previous, &data);
        chain.commit = commit_hash(chain.commit, number, &flags, &writes);
        let commit = chain.commit;
        chain.header_hashes.push(header.hash());
        chain.blocks.push(Block {
            header,
            data,
            metadata: BlockMetadata {
                flags,
                time,
                commit_hash: commit,
            },
        });
        number
    }
}

impl Application for LedgerApp {
    type Key = LedgerKey;
    type Command = LedgerCommand;
    type Output = LedgerOutput;
    type Snapshot = LedgerSnapshot;

    fn locks(&self, cmd: &LedgerCommand) -> Locks<LedgerKey> {
        match cmd {
            LedgerCommand::Seal { .. } => Locks::Exclusive,
            LedgerCommand::Verify { block, index, .. } => {
                Locks::keys([], [LedgerKey::Result(*block, *index)])
            }
            LedgerCommand::Validate {
                block,
                index,
                tx: None,
            } => Locks::keys([], [LedgerKey::Result(*block, *index)]),
            LedgerCommand::Validate { tx: Some(tx), .. } if !tx.body.ranges.is_empty() => {
                Locks::Exclusive
            }
            LedgerCommand::Validate {
                block,
                index,
                tx: Some(tx),
            } => Locks::keys(
                tx.body
                    .reads
                    .iter()
                    .map(|(k, _)| LedgerKey::State(k.clone())),
                tx.body
                    .writes
                    .iter()
                    .map(|(k, _)| LedgerKey::State(k.clone()))
                    .chain([
                        LedgerKey::TxId(tx.body.id.clone()),
                        LedgerKey::Result(*block, *index),
                    ]),
            ),
        }
    }

    fn apply(&self, ctx: &Ctx<'_, LedgerKey>, cmd: LedgerCommand) -> LedgerOutput {
        match cmd {
            LedgerCommand::Verify { block, index, tx } => {
                LedgerOutput::Verified(self.verify(ctx, block, index, &tx))
            }
            LedgerCommand::Validate { block, index, tx } => {
                LedgerOutput::Validated(self.validate(ctx, block, index, tx))
            }
            LedgerCommand::Seal { number, data, time } => {
                LedgerOutput::Sealed(self.seal(ctx, number, data, time))
            }
        }
    }

    fn snapshot(&self) -> LedgerSnapshot {
        LedgerSnapshot {
            world: self.world.copy(),
            history: self.history.copy(),
            txs: self.txs.copy(),
            chain: self.chain().clone(),
        }
    }

    fn restore(&self, s: LedgerSnapshot) {
        self.world.replace(s.world);
        self.history.replace(s.history);
        self.txs.replace(s.txs);
        self.results.replace(OrdMap::new());
        *self.chain() = s.chain;
    }
}

/// A channel whose blocks are validated in parallel: cuts blocks like [`crate::Channel`] and
/// hands each block's transactions, then its seal, to an [`Executor`].
pub struct ParallelChannel {
    config: BatchConfig,
    cutter: BlockCutter,
    exec: Executor<LedgerApp>,
    next_block: u64,
    next_job: u64,
}

impl ParallelChannel {
    /// A channel with its genesis block, validating on `pool`, holding at most `capacity`
    /// unfinished commands.
    #[must_use]
    pub fn genesis(
        config: BatchConfig,
        genesis: Bytes,
        time: u64,
        pool: &WorkerPool,
        capacity: usize,
    ) -> ParallelChannel {
        ParallelChannel {
            config,
            cutter: BlockCutter::default(),
            exec: Executor::new(LedgerApp::genesis(genesis, time), pool, capacity),
            next_block: 1,
            next_job: 0,
        }
    }

    /// Like [`crate::Channel::deliver`]: returns the numbers of the blocks cut (validated and
    /// sealed in the background; [`Self::wait`] for them).
    ///
    /// # Errors
    /// The executor failed (a bug: an access outside the declared locks).
    pub fn deliver(&mut self, envelope: &[u8], time: u64) -> Result<Vec<u64>, String> {
        let config = self.config;
        let batches = match crate::Envelope::decode(envelope) {
            Ok(crate::Envelope::Tx(tx)) => self.cutter.ordered(&config, tx, time),
            Ok(crate::Envelope::Tick) | Err(_) => self.cutter.on_time(&config, time),
        };
        let mut cut = Vec::new();
        for data in batches {
            let number = self.next_block;
            self.next_block += 1;
            let txs: Vec<Option<Arc<Transaction>>> = data
                .iter()
                .map(|bytes| Transaction::decode(bytes).ok().map(Arc::new))
                .collect();
            let mut jobs = Vec::with_capacity(2 * data.len() + 1);
            for (index, tx) in txs.iter().enumerate() {
                if let Some(tx) = tx {
                    jobs.push(Job::Command {
                        gsn: self.job_number(),
                        cmd: LedgerCommand::Verify {
                            block: number,
                            index: index as u32,
                            tx: tx.clone(),
                        },
                        reply: None,
                    });
                }
            }
            for (index, tx) in txs.into_iter().enumerate() {
                jobs.push(Job::Command {
                    gsn: self.job_number(),
                    cmd: LedgerCommand::Validate {
                        block: number,
                        index: index as u32,
                        tx,
                    },
                    reply: None,
                });
            }
            jobs.push(Job::Command {
                gsn: self.job_number(),
                cmd: LedgerCommand::Seal { number, data, time },
                reply: None,
            });
            self.exec.submit_many(jobs)?;
            cut.push(number);
        }
        Ok(cut)
    }

    fn job_number(&mut self) -> u64 {
        self.next_job += 1;
        self.next_job
    }

    /// Blocks until every block cut so far is sealed.
    pub fn wait(&self) {
        self.exec.wait_idle();
    }

    /// The state (consistent after [`Self::wait`]).
    #[must_use]
    pub fn app(&self) -> &LedgerApp {
        self.exec.app()
    }
}
