//! Why a request to the node failed: shared by the runtime and the hosting of applications.

use synod_core::{GroupId, ProposeError};

/// Why a request failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// No such group on this node.
    #[error("no group {0} on this node")]
    NoGroup(GroupId),
    /// The core refused the proposal (no quorum, overloaded, ...).
    #[error(transparent)]
    Refused(#[from] ProposeError),
    /// The node stopped before answering (the write may or may not have been applied).
    #[error("the node stopped before the outcome was known")]
    Stopped,
    /// The command was applied, but this node learned so from a peer's checkpoint (it was
    /// catching up, or restarting) rather than by applying it here, so its result is not
    /// known. Retrying would apply it again.
    #[error(
        "the command was applied, but this node caught up through a peer's checkpoint and does not know its result"
    )]
    OutputUnknown,
    /// This node's copy of the group is corrupt: it neither votes nor serves until the node
    /// is replaced (see docs/OPERATIONS.md).
    #[error("{0}; this node does not serve the group (see docs/OPERATIONS.md, corrupt group)")]
    Corrupt(String),
    /// A configuration change was refused when it was applied.
    #[error("configuration change refused: {0}")]
    Config(String),
    /// The group runs another kind of application than the caller expected.
    #[error("the group runs another kind of application")]
    WrongKind,
}
