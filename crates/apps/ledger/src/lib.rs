//! # synod-ledger: a channel's ledger and a notary, as deterministic state machines
//!
//! What the ordering service is for. Every member of a channel feeds the envelopes the
//! agreement delivers, with the agreed time, to the same [`Channel`]; so every member cuts the
//! same blocks (no leader: Fabric's batch rules applied in GSN order, the batch timeout on
//! agreed time), validates them the same way (execute-order-validate: signatures, duplicate
//! ids, MVCC read conflicts and phantom range reads, with Fabric's codes) and holds a
//! byte-identical hash-chained chain and world state.
//!
//! - [`cutter`]: block cutting; [`block`]: headers (number, previous hash, RFC 6962 data
//!   hash), metadata outside the header hash (flags, time, commit hash);
//! - [`channel`]: validation, world state with versions and history, kept on disk in the
//!   channel's database ([`store`]: tables, checkpoint streams), read through a
//!   [`LedgerView`] (queries, proofs);
//! - [`merkle`]: RFC 6962 roots, inclusion and consistency proofs and their verifiers;
//! - [`mod@audit`]: a whole chain audited from genesis by replay, trusting nothing;
//! - [`hosted`]: the channel and the notary as applications a Synod node hosts
//!   (`synod_exec::Hosted`): signature checks run ahead in parallel on the node's scheduler,
//!   the batch timeout is an agreed timer;
//! - [`notary`]: a Corda-style notary (consumed states, conflicts named, time windows on
//!   agreed time, the node's Ed25519 signature on success).
//!
//! The node hosts a [`ChannelApp`] as the application of a ledger channel's group and a
//! [`NotaryApp`] as a notary's (and `synod ledger verify` runs [`audit()`] on every node's
//! chain); [`http`] holds their routes, with per-channel roles (`synod-api`). The state
//! machines read no clock or randomness; a channel's only I/O is its own database, each commit
//! recording the position in the agreed order it reflects, so a node resumes a channel from
//! disk and streams it to peers as a checkpoint. What this crate does not do: keep a notary on
//! disk (its consumed states are in memory), identities (the server's TLS acceptor).

#![forbid(unsafe_code)]

pub mod audit;
pub mod block;
pub mod channel;
pub mod cli;
pub mod cutter;
pub mod hosted;
pub mod http;
pub mod merkle;
pub mod notary;
pub mod store;
pub mod tx;
mod validate;
mod view;

pub use audit::{AuditError, AuditReport, audit};
pub use block::{Block, BlockHeader, BlockMetadata};
pub use channel::{Channel, Envelope, LedgerView, TxProof, TxStatus, check_signature, tx_hash};
pub use cutter::{BatchConfig, BlockCutter};
pub use hosted::{CHANNEL_KIND, ChannelApp, ChannelState, LedgerOp, NOTARY_KIND, NotaryApp};
pub use notary::{NotariseRequest, Notary, NotaryOutcome, StateRef};
pub use tx::{Key, RangeRead, Transaction, TxBody, ValidationCode, Version};
