//! The application interface and the locking scheduler.
//!
//! Agreement fixes one order of commands (the GSN order); this crate executes them. An
//! [`Application`] says which keys each command reads and writes ([`Locks`]), applies a command
//! to produce its output, and takes and restores snapshots. The [`Executor`] admits commands in
//! GSN order, grants their locks in that order, and runs on a shared [`WorkerPool`] every
//! command whose locks are free. Two commands that conflict (one writes a key the other reads
//! or writes, or one locks everything) run in GSN order; others run in parallel. The state and
//! every output are therefore exactly those of serial execution in GSN order (one-copy
//! equivalence), which `tests/equivalence.rs` checks on random workloads and the shuttle tests
//! in `executor.rs` check over thread interleavings.
//!
//! Deadlock is impossible by construction: a command only ever waits for commands admitted
//! before it, so the waits-for relation follows the GSN order and has no cycle.
//!
//! [`Hosted`] (module [`host`]) is the rest of the boundary between the engine and an
//! application: what a node needs to host one as a group's state machine (decoding agreed
//! bytes, local reads, snapshot encodings, timers). Applications implement both traits; the
//! node knows them only through these.
//!
//! What the crate does not do: persist anything (an application may, in the directory its
//! node gives it), or know about groups, nodes or the network. The node feeds it decided commands and reads the applied
//! watermark back ([`Executor::applied`]), which only covers a GSN once every command up to it
//! has finished, so snapshots and log truncation never run ahead of the state.
//!
//! Out-of-lock access is a bug in the application, not a race to tolerate: state reached
//! through [`KeyedState`] checks every access against the command's declared locks (see
//! [`Ctx`]) and a violation stops the executor with a message naming the command and the key.

mod executor;
pub mod host;
mod keyed;
mod locks;
mod sync;

pub use executor::{Executor, Job, Reply, WorkerPool};
pub use host::{Agreed, AppDir, GroupSpec, Hosted, Position, StateError, Summary, Timer};
pub use keyed::KeyedState;
pub use locks::{Ctx, Locks};

/// A deterministic state machine whose commands declare the keys they touch.
///
/// Every method takes `&self`: commands whose locks do not conflict are applied concurrently,
/// so the state needs interior mutability ([`KeyedState`] provides it, with access checks).
/// [`Application::snapshot`] and [`Application::restore`] are only called while the executor
/// holds every lock, so they see and replace a quiescent state.
pub trait Application: Send + Sync + 'static {
    /// What locks are taken on.
    type Key: Ord + Clone + std::fmt::Debug + Send + Sync + 'static;
    /// A command, decoded.
    type Command: Send + 'static;
    /// What applying a command returns to the client that proposed it.
    type Output: Send + 'static;
    /// A copy of the state (cheap to take: it is taken with everything locked).
    type Snapshot: Send + 'static;

    /// The locks `cmd` needs. Must depend only on the command (not on the state), so every
    /// node computes the same locks.
    fn locks(&self, cmd: &Self::Command) -> Locks<Self::Key>;

    /// Applies `cmd`, delivered at `ctx.gsn()`. The result may depend only on the keys the
    /// command locked; it must be deterministic.
    fn apply(&self, ctx: &Ctx<'_, Self::Key>, cmd: Self::Command) -> Self::Output;

    /// A copy of the whole state.
    fn snapshot(&self) -> Self::Snapshot;

    /// Replaces the whole state.
    fn restore(&self, snapshot: Self::Snapshot);
}

/// A shared application runs as itself: the node keeps an `Arc` of the application it hosts
/// to hand to readers off the event loop.
impl<A: Application> Application for std::sync::Arc<A> {
    type Key = A::Key;
    type Command = A::Command;
    type Output = A::Output;
    type Snapshot = A::Snapshot;

    fn locks(&self, cmd: &Self::Command) -> Locks<Self::Key> {
        (**self).locks(cmd)
    }

    fn apply(&self, ctx: &Ctx<'_, Self::Key>, cmd: Self::Command) -> Self::Output {
        (**self).apply(ctx, cmd)
    }

    fn snapshot(&self) -> Self::Snapshot {
        (**self).snapshot()
    }

    fn restore(&self, snapshot: Self::Snapshot) {
        (**self).restore(snapshot);
    }
}

#[cfg(test)]
mod shuttle_tests;
