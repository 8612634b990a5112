//! What a node needs of an application beyond executing it: the [`Hosted`] trait.
//!
//! [`crate::Application`] is what the scheduler runs (locks, apply, snapshot, restore).
//! [`Hosted`] adds what hosting it in a replicated group takes: decoding the bytes agreed in
//! the log, local reads run at a barrier's place in the order, encoding and decoding snapshot
//! state, optional work run ahead in parallel, optional agreed timers and a status summary.
//! The node knows applications only through these two traits and the factory it is given for
//! each kind of group; it never names an application's type.
//!
//! An application keeps its state either in memory (a snapshot then carries all of it) or on
//! disk, in a store of its own in the directory the node gives it ([`AppDir`]). A disk-backed
//! application commits each change together with the [`Position`] it reflects and reports the
//! durable one ([`Hosted::durable`]): a restarted node resumes it from there instead of
//! replaying or decoding its whole state, and its checkpoints ([`Hosted::checkpoint`]) are
//! streamed to peers from disk ([`Hosted::write_checkpoint`], [`Hosted::read_checkpoint`]).

use std::io::{Read, Write};
use std::path::PathBuf;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use synod_core::{GroupId, ReplicaId};

use crate::Application;

/// A place in a group's agreed order: a slot (GSN) and a command's index among the commands
/// agreed in that slot. A disk-backed application records the position *after* the last
/// command its state reflects: every command before it is in the state, none after.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    /// The slot.
    pub gsn: u64,
    /// The command's index in the slot's delivery.
    pub index: u32,
}

impl Position {
    /// The start of slot `gsn` (before its first command).
    #[must_use]
    pub fn slot(gsn: u64) -> Position {
        Position { gsn, index: 0 }
    }
}

/// Where in the agreed order a command was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// Its GSN (slot).
    pub gsn: u64,
    /// Its index among the commands agreed in the slot (every node numbers them alike).
    pub index: u32,
    /// Agreed time of its slot, nanoseconds since the Unix epoch: the same on every replica
    /// (the largest batch timestamp delivered so far), unlike any node's clock.
    pub time_ns: u64,
}

impl Agreed {
    /// The command's position.
    #[must_use]
    pub fn position(&self) -> Position {
        Position {
            gsn: self.gsn,
            index: self.index,
        }
    }

    /// The position just after the command: what a state that includes it has applied.
    #[must_use]
    pub fn next(&self) -> Position {
        Position {
            gsn: self.gsn,
            index: self.index.saturating_add(1),
        }
    }
}

/// Where a node keeps one group's application state on disk, given to the application's
/// factory when the group is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppDir {
    /// The group's own directory (`<data dir>/apps/<group id>`), created by the node and
    /// removed with the group. An in-memory application ignores it.
    pub path: PathBuf,
    /// The node runs in the power-cut test mode: stores must keep writes in memory until they
    /// are synced (`synod_storage::UnsyncedFile`), so that a SIGKILL loses what a power cut
    /// would.
    pub power_cut_test_mode: bool,
}

/// What a group of some kind is, as its application is opened: the same on every node that
/// hosts it, so every node builds the same initial state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    /// The group's id (never reused in a cluster).
    pub id: GroupId,
    /// Its name in the catalog.
    pub name: String,
    /// GSN, in the default group, of the command that created it.
    pub created_gsn: u64,
    /// The members it was created with.
    pub genesis: Vec<ReplicaId>,
    /// The application's own parameters, as given at creation (opaque to the node).
    pub params: Bytes,
}

/// A command an application asks its node to propose when agreed time passes `due_ns` (a
/// ledger channel's batch timeout). The node proposes it once per due time, by its own clock,
/// and again while it stays due; its delivery moves agreed time on every member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timer {
    /// Agreed time at which the command is due, nanoseconds since the Unix epoch.
    pub due_ns: u64,
    /// The command to propose (an application command, as [`Hosted::decode`] reads it).
    pub command: Bytes,
}

/// A short account of an application's state, for status pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// How many items it holds (keys, blocks, states: the application says which).
    pub items: u64,
    /// A digest of its content: equal on nodes that are idle at the same GSN.
    pub digest: u64,
}

/// Why an application's encoded state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Written in another format (by another version): the data may be sound, so a node must
    /// not wipe it.
    #[error("written in format {found}; this version reads format {expected}")]
    Format {
        /// The format found.
        found: u8,
        /// The format this version reads.
        expected: u8,
    },
    /// Does not decode in this format.
    #[error("does not decode: {0}")]
    Undecodable(String),
    /// The application's store on disk is behind the snapshot the node resumes from: what
    /// lies between is no longer in the log, so this copy must rejoin from its peers.
    #[error("the state on disk is at {durable:?}, behind the snapshot at slot {snapshot}")]
    Behind {
        /// Where the store is.
        durable: Position,
        /// The slot the node's snapshot covers.
        snapshot: u64,
    },
    /// The application's store could not be read or written.
    #[error("store: {0}")]
    Store(String),
}

/// An application a node hosts as the state machine of a group.
///
/// Contract, on top of [`Application`]'s: [`Hosted::decode`] and [`Hosted::ahead`] run on the
/// node's event loop in GSN order and must be cheap; [`Hosted::decode`] must be a pure
/// function of its input (an undecodable command is skipped identically on every node).
pub trait Hosted: Application {
    /// A read a client asks of one node: run at a barrier's place in the order (linearizable)
    /// through [`Hosted::query`].
    type Query: Send + 'static;

    /// The command agreed as `bytes` at `at`, or `None` if it does not decode (skipped on
    /// every node alike).
    fn decode(&self, bytes: &Bytes, at: Agreed) -> Option<Self::Command>;

    /// The command that runs `query` on this node at its barrier's place in the order. Its
    /// output goes to the client that asked.
    fn query(&self, query: Self::Query) -> Self::Command;

    /// Work to run before `cmd`, in parallel with earlier commands (a signature check): it
    /// is handed to the scheduler first, with its own locks. `cmd` may be changed to refer to
    /// it. None by default.
    fn ahead(&self, _cmd: &mut Self::Command) -> Option<Self::Command> {
        None
    }

    /// The encoding of a snapshot's state: starts with a format byte of the application's,
    /// raised with every change to the encoding. Runs on a blocking thread.
    fn encode_state(state: &Self::Snapshot) -> Bytes;

    /// Decodes what [`Hosted::encode_state`] wrote.
    ///
    /// # Errors
    /// [`StateError::Format`] for another version's format, [`StateError::Undecodable`] if it
    /// does not decode.
    fn decode_state(&self, bytes: &[u8]) -> Result<Self::Snapshot, StateError>;

    /// A command to propose once agreed time passes a deadline (none by default).
    fn timer(&self) -> Option<Timer> {
        None
    }

    /// A short account of the state, for status (read outside the GSN order).
    fn summary(&self) -> Summary {
        Summary::default()
    }

    // ----- State on disk (all defaulted: an in-memory application implements none) -----

    /// Where the application's state on disk stands, if it keeps its state on disk: every
    /// command before this position is in it, durably, and none after. The node reads it once,
    /// when the group is opened, and delivers only the commands from there on; it then keeps
    /// the log from the last checkpoint, which this position must not be behind. `None` (the
    /// default): the state is in memory, restored from the node's snapshot.
    fn durable(&self) -> Option<Position> {
        None
    }

    /// A checkpoint of the state at the start of slot `next_gsn`, taken with every lock held
    /// (as [`Application::snapshot`], which it defaults to). A disk-backed application makes
    /// its state durable at `Position::slot(next_gsn)` before it returns (the node truncates
    /// the log below it next) and returns a consistent view of it, which the node keeps
    /// until the next checkpoint and streams to peers with [`Hosted::write_checkpoint`].
    fn checkpoint(&self, _next_gsn: u64) -> Self::Snapshot {
        self.snapshot()
    }

    /// Writes the part of a checkpoint's state that [`Hosted::encode_state`] leaves out (a
    /// disk-backed application's whole store) to `out`, on a blocking thread, streaming: the
    /// node sends it to a peer in chunks. Writes nothing by default.
    ///
    /// # Errors
    /// I/O errors of `out` or of the application's store.
    fn write_checkpoint(_state: &Self::Snapshot, _out: &mut dyn Write) -> std::io::Result<()> {
        Ok(())
    }

    /// Builds a state from a checkpoint received from a peer: `inline` as
    /// [`Hosted::encode_state`] wrote it, `rest` as [`Hosted::write_checkpoint`] did. Runs on
    /// a blocking thread; a disk-backed application stages the store in its directory without
    /// holding it in memory, and [`Application::restore`] swaps it in. Defaults to
    /// [`Hosted::decode_state`] of `inline`.
    ///
    /// # Errors
    /// As [`Hosted::decode_state`]; [`StateError::Store`] if the store cannot be staged.
    fn read_checkpoint(
        &self,
        inline: &[u8],
        _rest: &mut dyn Read,
    ) -> Result<Self::Snapshot, StateError> {
        self.decode_state(inline)
    }
}

/// Encodes `state` after the format byte `format` (postcard), for [`Hosted::encode_state`].
#[must_use]
pub fn encode_with_format<T: serde::Serialize>(format: u8, state: &T) -> Bytes {
    let mut out = vec![format];
    out.extend(postcard::to_stdvec(state).expect("encoding into a Vec cannot fail"));
    Bytes::from(out)
}

/// Decodes what [`encode_with_format`] wrote, checking the format byte.
///
/// # Errors
/// [`StateError`] as [`Hosted::decode_state`] describes.
pub fn decode_with_format<T: serde::de::DeserializeOwned>(
    format: u8,
    bytes: &[u8],
) -> Result<T, StateError> {
    match bytes.split_first() {
        Some((&f, state)) if f == format => {
            postcard::from_bytes(state).map_err(|e| StateError::Undecodable(e.to_string()))
        }
        Some((&found, _)) => Err(StateError::Format {
            found,
            expected: format,
        }),
        None => Err(StateError::Undecodable("empty".into())),
    }
}
