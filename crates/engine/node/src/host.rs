//! How the node hosts applications: through [`synod_exec::Hosted`] and the factories an
//! [`Apps`] registry holds, never by an application's type.
//!
//! Every group's log carries [`Command`]s of the node's own: an application's command (bytes
//! only the application decodes), a catalog change (the default group) or a barrier (a
//! linearizable read). A group's [`Hosting`] decodes them in GSN order and hands jobs to the
//! group's executor; catalog changes run there as exclusive jobs (they are rare), so the
//! catalog changes at exactly its place in the order on every node. Outputs go back to the
//! proposer's waiter as `Box<dyn Any>`, which [`crate::Node`]'s typed calls downcast to the
//! application's output type.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use synod_core::Slot;
use synod_exec::{
    Agreed, AppDir, Executor, GroupSpec, Hosted, Job, Position, Reply, StateError, Summary, Timer,
    WorkerPool,
};
use tokio::sync::{oneshot, watch};

use crate::catalog::{AdminCommand, AdminOutput, Catalog, Refusal};
use crate::error::RequestError;

/// What a node orders in a group's log. Encoded as one tag byte, then the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// An application command (only the group's application decodes it).
    App(Bytes),
    /// A catalog change (the default group only; refused elsewhere).
    Catalog(AdminCommand),
    /// Orders nothing: a linearizable read runs at its place on the node that proposed it.
    Barrier,
}

const TAG_APP: u8 = 0;
const TAG_CATALOG: u8 = 1;
const TAG_BARRIER: u8 = 2;

impl Command {
    pub(crate) fn encode(&self) -> Bytes {
        match self {
            Command::App(bytes) => {
                let mut out = Vec::with_capacity(bytes.len() + 1);
                out.push(TAG_APP);
                out.extend_from_slice(bytes);
                Bytes::from(out)
            }
            Command::Catalog(cmd) => {
                let mut out = vec![TAG_CATALOG];
                out.extend(postcard::to_stdvec(cmd).expect("encoding into a Vec cannot fail"));
                Bytes::from(out)
            }
            Command::Barrier => Bytes::from_static(&[TAG_BARRIER]),
        }
    }

    /// `None` if it does not decode: skipped the same way on every node.
    pub(crate) fn decode(bytes: &Bytes) -> Option<Command> {
        match *bytes.first()? {
            TAG_APP => Some(Command::App(bytes.slice(1..))),
            TAG_CATALOG => postcard::from_bytes(&bytes[1..]).ok().map(Command::Catalog),
            TAG_BARRIER if bytes.len() == 1 => Some(Command::Barrier),
            _ => None,
        }
    }
}

/// A command's outcome on the node that proposed it.
pub struct Applied {
    /// The GSN it was delivered at.
    pub gsn: Slot,
    /// The application's output (its `Application::Output`, boxed).
    pub output: Box<dyn Any + Send>,
}

impl fmt::Debug for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applied")
            .field("gsn", &self.gsn)
            .finish_non_exhaustive()
    }
}

type Answer<T> = oneshot::Sender<Result<T, RequestError>>;

/// A client waiting for its proposal to be applied.
pub(crate) enum Waiter {
    /// An application command: its output.
    Command(Answer<Applied>),
    /// A linearizable read (the application's `Query`, boxed): run at its barrier's place.
    Query(Box<dyn Any + Send>, Answer<Applied>),
    /// A catalog change.
    Admin(Answer<(Slot, AdminOutput)>),
    /// A configuration change: the GSN from which it governs.
    Config(Answer<Slot>),
    /// A barrier: its GSN, once everything before it is applied here.
    Barrier(Answer<Slot>),
    /// A command the node proposed for itself (an application's timer): nobody waits.
    Nobody,
}

impl Waiter {
    pub(crate) fn fail(self, e: RequestError) {
        match self {
            Waiter::Command(reply) | Waiter::Query(_, reply) => drop(reply.send(Err(e))),
            Waiter::Admin(reply) => drop(reply.send(Err(e))),
            Waiter::Config(reply) | Waiter::Barrier(reply) => drop(reply.send(Err(e))),
            Waiter::Nobody => {}
        }
    }
}

/// The default group's catalog and where its changes are published.
pub(crate) struct CatalogCell {
    catalog: Mutex<Catalog>,
    publish: watch::Sender<Arc<Catalog>>,
}

impl CatalogCell {
    fn set(&self, catalog: Catalog) {
        self.publish.send_replace(Arc::new(catalog.clone()));
        *lock(&self.catalog) = catalog;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The format of a group's snapshot state as the node writes it: this byte, the catalog (the
/// default group; postcard `Option<Catalog>`), then the application's own encoding. Raise it
/// with every change to this layout or to the catalog's encoding, so that a node never
/// mistakes another version's snapshot for damage.
pub(crate) const HOST_FORMAT: u8 = 2;

fn encode_state(catalog: Option<&Catalog>, app: &[u8]) -> Bytes {
    let mut out = vec![HOST_FORMAT];
    out.extend(postcard::to_stdvec(&catalog).expect("encoding into a Vec cannot fail"));
    out.extend_from_slice(app);
    Bytes::from(out)
}

fn decode_state(bytes: &[u8]) -> Result<(Option<Catalog>, &[u8]), StateError> {
    match bytes.split_first() {
        Some((&HOST_FORMAT, rest)) => postcard::take_from_bytes::<Option<Catalog>>(rest)
            .map_err(|e| StateError::Undecodable(format!("catalog: {e}"))),
        Some((&found, _)) => Err(StateError::Format {
            found,
            expected: HOST_FORMAT,
        }),
        None => Err(StateError::Undecodable("empty".into())),
    }
}

/// A checkpoint's state beyond its inline encoding, written when a peer first asks for it
/// (a disk-backed application's store, read through the consistent view its checkpoint
/// holds): see [`synod_exec::Hosted::write_checkpoint`].
pub(crate) trait Export: Send + Sync {
    /// Streams the state to `out` (on a blocking thread).
    fn write(&self, out: &mut dyn std::io::Write) -> std::io::Result<()>;
}

struct TypedExport<A: Hosted>(Mutex<A::Snapshot>);

impl<A: Hosted> Export for TypedExport<A> {
    fn write(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        A::write_checkpoint(&lock(&self.0), out)
    }
}

/// A snapshot's state built from what a peer sent (on a blocking thread), ready to install.
pub(crate) struct Staged {
    catalog: Option<Catalog>,
    app: Box<dyn Any + Send>,
}

#[cfg(test)]
impl Staged {
    pub(crate) fn for_test() -> Staged {
        Staged {
            catalog: None,
            app: Box::new(()),
        }
    }
}

/// Builds a [`Staged`] state from a snapshot's inline state (the node's encoding) and the rest
/// of the transfer (what [`Export::write`] wrote). Runs on a blocking thread.
pub(crate) type Stager =
    Box<dyn FnOnce(&[u8], &mut dyn std::io::Read) -> Result<Staged, StateError> + Send>;

/// What a finished checkpoint hands back: the node's inline encoding of the state, and the
/// rest to stream to peers on request (disk-backed applications only).
pub(crate) type CheckpointDone = Box<dyn FnOnce(Bytes, Option<Arc<dyn Export>>) + Send>;

/// A hosted group's application and executor, as the runtime sees them (object-safe: groups
/// of every kind sit in one map).
pub(crate) trait HostedGroup: Send {
    /// Hands over the commands of one delivery (each with the client waiting on it here),
    /// behind everything handed over before; `next_gsn` is the GSN after the delivery.
    /// Commands before [`HostedGroup::resumed_at`] are already in the state and skipped.
    fn deliver(&mut self, at: Agreed, commands: Vec<(Bytes, Option<Waiter>)>, next_gsn: Slot);
    /// Admits backlogged jobs while the executor has room; true when none is left. `Err`:
    /// the application failed (a bug), the group cannot go on.
    fn flush(&mut self) -> Result<bool, String>;
    /// Every command below this GSN has finished.
    fn applied(&self) -> Slot;
    /// Where the state stood when the group was opened: commands before it are in it (for
    /// an in-memory application, the start of the slot its snapshot covers).
    fn resumed_at(&self) -> Position;
    /// Whether the application keeps its state on disk.
    fn on_disk(&self) -> bool;
    /// Jobs admitted and unfinished.
    fn backlog(&self) -> usize;
    /// Why the application stopped, if it did.
    fn failure(&self) -> Option<String>;
    /// Takes a checkpoint of the state behind everything handed over (`next_gsn`: what it
    /// covers), encodes it on a blocking thread and calls `done` with the encoding.
    fn snapshot(&mut self, next_gsn: Slot, done: CheckpointDone);
    /// What builds a state received from a peer, off the event loop.
    fn stager(&self) -> Stager;
    /// Replaces the state with a staged one, behind everything handed over.
    fn install(&mut self, staged: Staged, next_gsn: Slot);
    /// The application, for readers off the event loop (downcast to its type).
    fn app(&self) -> Arc<dyn Any + Send + Sync>;
    /// The application's kind of timer, if one is set.
    fn timer(&self) -> Option<Timer>;
    /// For status.
    fn summary(&self) -> Summary;
    /// Stops: backlogged jobs are dropped (their clients learn the outcome is unknown).
    fn close(&mut self);
}

/// A delivery's jobs not admitted yet (the executor was full), and the GSN after it.
struct Backlogged<A: Hosted> {
    jobs: Vec<Job<Arc<A>>>,
    next_gsn: Slot,
}

/// A group's application of type `A` on its executor.
pub(crate) struct Hosting<A: Hosted> {
    app: Arc<A>,
    exec: Executor<Arc<A>>,
    /// Handed over, not admitted yet, in GSN order: admitted before anything else is taken
    /// in, so a slow application holds the agreement back instead of queueing without bound.
    backlog: VecDeque<Backlogged<A>>,
    /// The default group's catalog.
    catalog: Option<Arc<CatalogCell>>,
    resumed_at: Position,
    on_disk: bool,
}

impl<A: Hosted> Hosting<A> {
    fn push(&mut self, jobs: Vec<Job<Arc<A>>>, next_gsn: Slot) {
        self.backlog.push_back(Backlogged { jobs, next_gsn });
        // A failed executor stays failed: the event loop's own flush reports it.
        let _ = self.flush();
    }

    /// The jobs for one command delivered at `at`.
    fn jobs(&self, at: Agreed, bytes: &Bytes, waiter: Option<Waiter>, jobs: &mut Vec<Job<Arc<A>>>) {
        let gsn = Slot(at.gsn);
        let fail = |w: Option<Waiter>| {
            if let Some(w) = w {
                w.fail(RequestError::Stopped);
            }
        };
        match Command::decode(bytes) {
            None => fail(waiter),
            Some(Command::Barrier) => match waiter {
                Some(Waiter::Query(query, reply)) => match query.downcast::<A::Query>() {
                    Ok(query) => jobs.push(Job::Command {
                        gsn: at.gsn,
                        cmd: self.app.query(*query),
                        reply: Some(answer(gsn, reply)),
                    }),
                    Err(_) => drop(reply.send(Err(RequestError::WrongKind))),
                },
                // Exclusive: answered once every earlier command has finished (barriers of
                // their own are rare: a catalog refresh, not a read).
                Some(Waiter::Barrier(reply)) => jobs.push(Job::Exclusive(Box::new(move |_| {
                    let _ = reply.send(Ok(gsn));
                }))),
                other => fail(other),
            },
            Some(Command::App(bytes)) => {
                let Some(mut cmd) = self.app.decode(&bytes, at) else {
                    return fail(waiter);
                };
                if let Some(ahead) = self.app.ahead(&mut cmd) {
                    jobs.push(Job::Command {
                        gsn: at.gsn,
                        cmd: ahead,
                        reply: None,
                    });
                }
                let reply = match waiter {
                    Some(Waiter::Command(reply)) => Some(answer(gsn, reply)),
                    other => {
                        fail(other);
                        None
                    }
                };
                jobs.push(Job::Command {
                    gsn: at.gsn,
                    cmd,
                    reply,
                });
            }
            Some(Command::Catalog(cmd)) => {
                let reply = match waiter {
                    Some(Waiter::Admin(reply)) => Some(reply),
                    other => {
                        fail(other);
                        None
                    }
                };
                let Some(cell) = self.catalog.clone() else {
                    if let Some(reply) = reply {
                        let refused = AdminOutput::Refused(Refusal::NotTheDefaultGroup);
                        let _ = reply.send(Ok((gsn, refused)));
                    }
                    return;
                };
                // Exclusive: catalog changes are rare, and so need no lock keys of their own.
                jobs.push(Job::Exclusive(Box::new(move |_| {
                    let mut catalog = lock(&cell.catalog);
                    let output = catalog.apply(at.gsn, &cmd);
                    if !matches!(output, AdminOutput::Refused(_)) {
                        // Published before the client hears back, so a client that reads the
                        // catalog after its change was acknowledged sees it.
                        cell.publish.send_replace(Arc::new(catalog.clone()));
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok((gsn, output)));
                    }
                })));
            }
        }
    }
}

/// Where an application's output goes: the waiting client, boxed.
fn answer<O: Send + 'static>(gsn: Slot, reply: Answer<Applied>) -> Reply<O> {
    Box::new(move |output| {
        let _ = reply.send(Ok(Applied {
            gsn,
            output: Box::new(output),
        }));
    })
}

impl<A: Hosted> HostedGroup for Hosting<A> {
    fn deliver(&mut self, at: Agreed, commands: Vec<(Bytes, Option<Waiter>)>, next_gsn: Slot) {
        let mut jobs = Vec::with_capacity(commands.len());
        for (index, (bytes, waiter)) in commands.into_iter().enumerate() {
            let at = Agreed {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                ..at
            };
            if at.position() < self.resumed_at {
                // Already in the state on disk (a restart resumes there): its client, if
                // any, cannot be given its output.
                if let Some(w) = waiter {
                    w.fail(RequestError::OutputUnknown);
                }
                continue;
            }
            self.jobs(at, &bytes, waiter, &mut jobs);
        }
        self.push(jobs, next_gsn);
    }

    fn flush(&mut self) -> Result<bool, String> {
        // `has_failed` is a load; `failure` takes the executor's lock, so only when needed.
        if self.exec.has_failed() {
            return Err(self.exec.failure().unwrap_or_default());
        }
        while let Some(front) = self.backlog.front_mut() {
            let rest = self.exec.try_submit_many(std::mem::take(&mut front.jobs))?;
            if !rest.is_empty() {
                front.jobs = rest;
                return Ok(false);
            }
            self.exec.mark_applied(front.next_gsn.0);
            self.backlog.pop_front();
        }
        Ok(true)
    }

    fn applied(&self) -> Slot {
        Slot(self.exec.applied())
    }

    fn resumed_at(&self) -> Position {
        self.resumed_at
    }

    fn on_disk(&self) -> bool {
        self.on_disk
    }

    fn backlog(&self) -> usize {
        self.exec.backlog()
    }

    fn failure(&self) -> Option<String> {
        if self.exec.has_failed() {
            Some(self.exec.failure().unwrap_or_default())
        } else {
            None
        }
    }

    fn snapshot(&mut self, next_gsn: Slot, done: CheckpointDone) {
        let catalog = self.catalog.clone();
        let on_disk = self.on_disk;
        let runtime = tokio::runtime::Handle::current();
        let job = Job::Exclusive(Box::new(move |app: &Arc<A>| {
            // The copy is cheap (persistent maps, or a disk-backed application's read view
            // after one durable commit); the encoding is not, so it runs on a blocking thread
            // and neither the event loop nor the executor waits for it.
            let state = app.checkpoint(next_gsn.0);
            let catalog = catalog.map(|c| lock(&c.catalog).clone());
            runtime.spawn_blocking(move || {
                let inline = encode_state(catalog.as_ref(), &A::encode_state(&state));
                let export: Option<Arc<dyn Export>> = on_disk
                    .then(|| Arc::new(TypedExport::<A>(Mutex::new(state))) as Arc<dyn Export>);
                done(inline, export);
            });
        }));
        self.push(vec![job], next_gsn);
    }

    fn stager(&self) -> Stager {
        let app = self.app.clone();
        Box::new(move |inline: &[u8], rest: &mut dyn std::io::Read| {
            let (catalog, app_inline) = decode_state(inline)?;
            let state = app.read_checkpoint(app_inline, rest)?;
            Ok(Staged {
                catalog,
                app: Box::new(state),
            })
        })
    }

    fn install(&mut self, staged: Staged, next_gsn: Slot) {
        let Ok(state) = staged.app.downcast::<A::Snapshot>() else {
            unreachable!("a stager of this group built the state");
        };
        let (cell, catalog) = (self.catalog.clone(), staged.catalog);
        let job = Job::Exclusive(Box::new(move |app: &Arc<A>| {
            synod_exec::Application::restore(app, *state);
            if let (Some(cell), Some(catalog)) = (cell, catalog) {
                cell.set(catalog);
            }
        }));
        // Whatever was on disk before is replaced: nothing is skipped from here on.
        self.resumed_at = Position::slot(next_gsn.0);
        self.push(vec![job], next_gsn);
    }

    fn app(&self) -> Arc<dyn Any + Send + Sync> {
        self.app.clone()
    }

    fn timer(&self) -> Option<Timer> {
        self.app.timer()
    }

    fn summary(&self) -> Summary {
        self.app.summary()
    }

    fn close(&mut self) {
        self.backlog.clear();
    }
}

/// What opening a group's application takes from the node.
pub(crate) struct Open<'a> {
    pub(crate) spec: &'a GroupSpec,
    /// The snapshot state to resume from (`None`: a fresh group).
    pub(crate) state: Option<&'a [u8]>,
    /// The GSN the state covers.
    pub(crate) next_gsn: Slot,
    pub(crate) pool: &'a WorkerPool,
    pub(crate) capacity: usize,
    pub(crate) progress: Arc<dyn Fn() + Send + Sync>,
    /// The default group's catalog publisher (with the catalog of a new cluster).
    pub(crate) catalog: Option<watch::Sender<Arc<Catalog>>>,
    /// The group's directory on this node.
    pub(crate) dir: AppDir,
}

/// Opens the application of one kind of group.
trait Factory: Send + Sync {
    fn open(&self, open: Open<'_>) -> Result<Box<dyn HostedGroup>, StateError>;
}

type FactoryFn<A> = dyn Fn(&GroupSpec, &AppDir) -> Result<A, StateError> + Send + Sync;

struct TypedFactory<A>(Box<FactoryFn<A>>);

impl<A: Hosted> Factory for TypedFactory<A> {
    fn open(&self, open: Open<'_>) -> Result<Box<dyn HostedGroup>, StateError> {
        let app = Arc::new((self.0)(open.spec, &open.dir)?);
        let (catalog, app_state) = match open.state {
            Some(bytes) => {
                let (catalog, app_state) = decode_state(bytes)?;
                (catalog, Some(app_state))
            }
            None => (None, None),
        };
        let snapshot_at = Position::slot(open.next_gsn.0);
        let resumed_at = match app.durable() {
            // On disk: resumes where its store is, which the log must still cover.
            Some(durable) if durable < snapshot_at => {
                return Err(StateError::Behind {
                    durable,
                    snapshot: open.next_gsn.0,
                });
            }
            Some(durable) => durable,
            None => {
                if let Some(state) = app_state {
                    synod_exec::Application::restore(&app, app.decode_state(state)?);
                }
                snapshot_at
            }
        };
        let catalog = open.catalog.map(|publish| {
            let c = catalog.unwrap_or_else(|| (**publish.borrow()).clone());
            publish.send_replace(Arc::new(c.clone()));
            Arc::new(CatalogCell {
                catalog: Mutex::new(c),
                publish,
            })
        });
        let progress = open.progress;
        let exec = Executor::with_progress(app.clone(), open.pool, open.capacity, move || {
            progress();
        });
        exec.mark_applied(resumed_at.gsn);
        Ok(Box::new(Hosting {
            on_disk: app.durable().is_some(),
            app,
            exec,
            backlog: VecDeque::new(),
            catalog,
            resumed_at,
        }))
    }
}

/// The kinds of application a node can host, each with the factory that opens one for a
/// group of its kind. Built by the binary (the server assembles the applications it ships);
/// the catalog names a group's kind, and a node whose registry lacks it does not serve the
/// group.
pub struct Apps {
    kinds: BTreeMap<String, Box<dyn Factory>>,
    default_kind: String,
}

impl fmt::Debug for Apps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Apps")
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .field("default_kind", &self.default_kind)
            .finish()
    }
}

impl Apps {
    /// A registry whose default group (id 0, which every cluster has) runs `default_kind`,
    /// opened by `factory`.
    pub fn new<A: Hosted>(
        default_kind: &str,
        factory: impl Fn(&GroupSpec) -> A + Send + Sync + 'static,
    ) -> Apps {
        Apps {
            kinds: BTreeMap::new(),
            default_kind: default_kind.to_string(),
        }
        .with(default_kind, factory)
    }

    /// Adds the kind `kind`, opened by `factory` (which builds the application of a group
    /// that has applied nothing yet; a snapshot's state is restored into it).
    #[must_use]
    pub fn with<A: Hosted>(
        mut self,
        kind: &str,
        factory: impl Fn(&GroupSpec) -> A + Send + Sync + 'static,
    ) -> Apps {
        // In memory: no directory is created for it.
        let open = move |spec: &GroupSpec, _dir: &AppDir| Ok(factory(spec));
        self.kinds
            .insert(kind.to_string(), Box::new(TypedFactory(Box::new(open))));
        self
    }

    /// Adds the kind `kind`, opened by `factory` in the group's directory on this node: a
    /// disk-backed application opens (or creates) its store there and resumes from the
    /// position it reports ([`Hosted::durable`]). An error stops this node from serving the
    /// group; [`StateError::Undecodable`] and [`StateError::Behind`] make it rejoin from its
    /// peers instead (its directory wiped).
    #[must_use]
    pub fn with_dir<A: Hosted>(
        mut self,
        kind: &str,
        factory: impl Fn(&GroupSpec, &AppDir) -> Result<A, StateError> + Send + Sync + 'static,
    ) -> Apps {
        let open = move |spec: &GroupSpec, dir: &AppDir| {
            std::fs::create_dir_all(&dir.path)
                .map_err(|e| StateError::Store(format!("{}: {e}", dir.path.display())))?;
            factory(spec, dir)
        };
        self.kinds
            .insert(kind.to_string(), Box::new(TypedFactory(Box::new(open))));
        self
    }

    /// The kind the default group runs.
    #[must_use]
    pub fn default_kind(&self) -> &str {
        &self.default_kind
    }

    /// Whether this registry can open groups of `kind`.
    #[must_use]
    pub fn has(&self, kind: &str) -> bool {
        self.kinds.contains_key(kind)
    }

    pub(crate) fn open(
        &self,
        kind: &str,
        open: Open<'_>,
    ) -> Result<Box<dyn HostedGroup>, OpenError> {
        let factory = self
            .kinds
            .get(kind)
            .ok_or_else(|| OpenError::UnknownKind(kind.to_string()))?;
        factory.open(open).map_err(OpenError::State)
    }
}

/// Why a group's application could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// This node's binary has no application of this kind.
    #[error("this node has no application of kind {0:?}")]
    UnknownKind(String),
    /// The snapshot's state cannot be used.
    #[error("{0}")]
    State(StateError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_garbage_does_not_decode() {
        for cmd in [
            Command::App(Bytes::from_static(b"anything")),
            Command::App(Bytes::new()),
            Command::Barrier,
            Command::Catalog(AdminCommand::RegisterNode {
                node: synod_core::ReplicaId(3),
                addr: "127.0.0.1:1".into(),
            }),
        ] {
            assert_eq!(Command::decode(&cmd.encode()), Some(cmd));
        }
        for garbage in [
            &b""[..],
            &[9],
            &[TAG_BARRIER, 0],
            &[TAG_CATALOG, 0xff, 0xff],
        ] {
            assert_eq!(Command::decode(&Bytes::copy_from_slice(garbage)), None);
        }
    }

    #[test]
    fn snapshot_state_keeps_the_catalog_apart_from_the_application_bytes() {
        let catalog = Catalog::new(&[0, 1, 2].map(synod_core::ReplicaId), "kv");
        let bytes = encode_state(Some(&catalog), b"app-state");
        let (c, app) = decode_state(&bytes).expect("decodes");
        assert_eq!(c, Some(catalog));
        assert_eq!(app, b"app-state");
        let mut other = bytes.to_vec();
        other[0] = HOST_FORMAT + 1;
        assert!(matches!(
            decode_state(&other),
            Err(StateError::Format { found, .. }) if found == HOST_FORMAT + 1
        ));
    }
}
