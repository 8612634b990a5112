//! The store hosted in a group: its locks, commands, reads and snapshots, and the typed calls
//! a node's callers use.
//!
//! Locks: a write locks its key (and, with an idempotency token, the token log, which orders
//! tokened writes among themselves so the oldest token is forgotten first on every node); a
//! linearizable read locks its key for reading, a recursive read locks everything for
//! reading. The map itself sits behind one short mutex (commands are cheap); the locks are
//! what keep each command's view serial.

use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use synod_core::GroupId;
use synod_core::Slot;
use synod_exec::{
    Agreed, Application, Ctx, GroupSpec, Hosted, Locks, StateError, Summary,
    host::{decode_with_format, encode_with_format},
};
use synod_node::{Node, RequestError};

use crate::store::{Entry, Kv, KvCommand, KvOutput, KvRequest};

/// The kind name of key-value groups in the catalog.
pub const KIND: &str = "kv";

/// The format of the store's snapshot encoding; raise it with every change to it.
const FORMAT: u8 = 1;

/// What a key-value command locks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KvLock {
    /// One key.
    Entry(String),
    /// The idempotency-token log.
    Tokens,
}

/// A read: one key, or a page of the keys under a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The key, or the prefix.
    pub key: String,
    /// The keys under `key` as a prefix, a page at a time.
    pub recurse: bool,
    /// A recursive read starts after this key (the `next` of the page before).
    pub after: Option<String>,
    /// Most entries in a page (at most [`PAGE_MAX`]); a page also ends before its keys and
    /// values pass [`PAGE_BYTES_MAX`] (but holds at least one entry).
    pub limit: usize,
}

/// Most entries one page of a recursive read holds.
pub const PAGE_MAX: usize = 10_000;
/// Most bytes of keys and values one page holds (beyond its first entry): a listing never
/// builds more than this in memory, however much lies under the prefix.
pub const PAGE_BYTES_MAX: usize = 4 << 20;

/// The result of a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    /// Everything below this GSN is reflected.
    pub gsn: Slot,
    /// The entry, if the key exists (single-key reads).
    pub entry: Option<Entry>,
    /// A page of the entries under the prefix, in key order (recursive reads).
    pub entries: Vec<(String, Entry)>,
    /// The page stopped short: the next one starts after this key.
    pub next: Option<String>,
}

/// The result of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteResult {
    /// The GSN at which it was applied (an earlier one for a repeated idempotency token).
    pub gsn: Slot,
    /// What it produced.
    pub output: KvOutput,
}

/// A command for the scheduler.
#[derive(Clone, Debug)]
pub enum KvOp {
    /// A write agreed in the log.
    Write(KvRequest),
    /// A linearizable read, run at its barrier's place on the node that serves it.
    Read(Query),
}

/// What a command produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvResult {
    /// A write: the GSN whose outcome it is and the outcome.
    Written(WriteResult),
    /// A read.
    Read(ReadResult),
}

impl Query {
    fn run(&self, gsn: Slot, kv: &Kv) -> ReadResult {
        if self.recurse {
            let limit = self.limit.clamp(1, PAGE_MAX);
            let mut entries = Vec::new();
            let mut bytes = 0;
            let mut next = None;
            let after = self.after.as_deref();
            for (k, e) in kv
                .prefix(&self.key)
                .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            {
                let size = k.len() + e.value.len();
                if entries.len() == limit || (!entries.is_empty() && bytes + size > PAGE_BYTES_MAX)
                {
                    next = entries.last().map(|(k, _): &(String, Entry)| k.clone());
                    break;
                }
                bytes += size;
                entries.push((k.clone(), e.clone()));
            }
            ReadResult {
                gsn,
                entry: None,
                entries,
                next,
            }
        } else {
            ReadResult {
                gsn,
                entry: kv.get(&self.key).cloned(),
                entries: Vec::new(),
                next: None,
            }
        }
    }
}

/// The key-value store as a group's application.
#[derive(Debug, Default)]
pub struct KvApp {
    kv: Mutex<Kv>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KvApp {
    /// An empty store (every key-value group starts so, whatever its spec).
    #[must_use]
    pub fn new(_spec: &GroupSpec) -> KvApp {
        KvApp::default()
    }

    /// A read outside the GSN order (`?stale`): each key's value is one its history had, but
    /// keys may reflect different GSNs (commands on other keys finish in any order).
    #[must_use]
    pub fn read_stale(&self, query: &Query, applied: Slot) -> ReadResult {
        query.run(applied, &lock(&self.kv))
    }

    /// The encoding of a request as a command in the log.
    #[must_use]
    pub fn encode(req: &KvRequest) -> Bytes {
        Bytes::from(postcard::to_stdvec(req).expect("encoding into a Vec cannot fail"))
    }
}

impl Application for KvApp {
    type Key = KvLock;
    type Command = KvOp;
    type Output = KvResult;
    type Snapshot = Kv;

    fn locks(&self, cmd: &KvOp) -> Locks<KvLock> {
        match cmd {
            KvOp::Write(req) => {
                let token = req.token.as_ref().map(|_| KvLock::Tokens);
                let key = KvLock::Entry(req.cmd.key().to_string());
                Locks::keys([], std::iter::once(key).chain(token))
            }
            KvOp::Read(query) if query.recurse => Locks::ReadAll,
            KvOp::Read(query) => Locks::keys([KvLock::Entry(query.key.clone())], []),
        }
    }

    fn apply(&self, ctx: &Ctx<'_, KvLock>, cmd: KvOp) -> KvResult {
        match cmd {
            KvOp::Write(req) => {
                if req.token.is_some() {
                    ctx.check_write(&KvLock::Tokens);
                }
                ctx.check_write(&KvLock::Entry(req.cmd.key().to_string()));
                let (at, output) = lock(&self.kv).apply_request(ctx.gsn(), &req);
                KvResult::Written(WriteResult {
                    gsn: Slot(at),
                    output,
                })
            }
            KvOp::Read(query) => {
                if query.recurse {
                    ctx.check_scan();
                } else {
                    ctx.check_read(&KvLock::Entry(query.key.clone()));
                }
                KvResult::Read(query.run(Slot(ctx.gsn() + 1), &lock(&self.kv)))
            }
        }
    }

    fn snapshot(&self) -> Kv {
        lock(&self.kv).clone()
    }

    fn restore(&self, state: Kv) {
        *lock(&self.kv) = state;
    }
}

impl Hosted for KvApp {
    type Query = Query;

    fn decode(&self, bytes: &Bytes, _at: Agreed) -> Option<KvOp> {
        postcard::from_bytes(bytes).ok().map(KvOp::Write)
    }

    fn query(&self, query: Query) -> KvOp {
        KvOp::Read(query)
    }

    fn encode_state(state: &Kv) -> Bytes {
        encode_with_format(FORMAT, state)
    }

    fn decode_state(&self, bytes: &[u8]) -> Result<Kv, StateError> {
        decode_with_format(FORMAT, bytes)
    }

    fn summary(&self) -> Summary {
        let kv = lock(&self.kv);
        Summary {
            items: kv.len() as u64,
            digest: kv.content_hash(),
        }
    }
}

/// Typed key-value calls on a node, for a group that runs [`KvApp`].
#[allow(async_fn_in_trait)] // called on the concrete `Node` only
pub trait KvNode {
    /// Proposes `cmd` in `group` and waits until it is applied here.
    ///
    /// # Errors
    /// [`RequestError`]; on `Stopped` the outcome is unknown.
    async fn write(&self, group: GroupId, cmd: KvCommand) -> Result<WriteResult, RequestError>;

    /// Like [`KvNode::write`], with an idempotency token: retrying with the same token after
    /// a lost answer applies the command at most once and returns the first outcome.
    ///
    /// # Errors
    /// [`RequestError`]; on `Stopped` the outcome is unknown (retry with the same token).
    async fn write_once(
        &self,
        group: GroupId,
        cmd: KvCommand,
        token: Option<String>,
    ) -> Result<WriteResult, RequestError>;

    /// Reads `key`: linearizable (through a barrier in the log) or from local state.
    ///
    /// # Errors
    /// [`RequestError`].
    async fn read(
        &self,
        group: GroupId,
        key: &str,
        linearizable: bool,
    ) -> Result<ReadResult, RequestError>;

    /// Lists the keys under `prefix`, the first page of them ([`PAGE_MAX`] entries,
    /// [`PAGE_BYTES_MAX`] bytes): linearizable or from local state.
    ///
    /// # Errors
    /// [`RequestError`].
    async fn list(
        &self,
        group: GroupId,
        prefix: &str,
        linearizable: bool,
    ) -> Result<ReadResult, RequestError> {
        self.list_page(group, prefix, None, PAGE_MAX, linearizable)
            .await
    }

    /// One page of the keys under `prefix`: at most `limit` entries after `after` (the
    /// `next` of the page before); `next` in the result continues it.
    ///
    /// # Errors
    /// [`RequestError`].
    async fn list_page(
        &self,
        group: GroupId,
        prefix: &str,
        after: Option<String>,
        limit: usize,
        linearizable: bool,
    ) -> Result<ReadResult, RequestError>;
}

impl KvNode for Node {
    async fn write(&self, group: GroupId, cmd: KvCommand) -> Result<WriteResult, RequestError> {
        self.write_once(group, cmd, None).await
    }

    async fn write_once(
        &self,
        group: GroupId,
        cmd: KvCommand,
        token: Option<String>,
    ) -> Result<WriteResult, RequestError> {
        let command = KvApp::encode(&KvRequest { token, cmd });
        match self.submit_to::<KvApp>(group, command).await? {
            (_, KvResult::Written(w)) => Ok(w),
            (_, KvResult::Read(_)) => Err(RequestError::WrongKind),
        }
    }

    async fn read(
        &self,
        group: GroupId,
        key: &str,
        linearizable: bool,
    ) -> Result<ReadResult, RequestError> {
        let query = Query {
            key: key.to_string(),
            recurse: false,
            after: None,
            limit: PAGE_MAX,
        };
        run(self, group, query, linearizable).await
    }

    async fn list_page(
        &self,
        group: GroupId,
        prefix: &str,
        after: Option<String>,
        limit: usize,
        linearizable: bool,
    ) -> Result<ReadResult, RequestError> {
        let query = Query {
            key: prefix.to_string(),
            recurse: true,
            after,
            limit,
        };
        run(self, group, query, linearizable).await
    }
}

async fn run(
    node: &Node,
    group: GroupId,
    query: Query,
    linearizable: bool,
) -> Result<ReadResult, RequestError> {
    if !linearizable {
        let (app, applied) = node.app_of::<KvApp>(group).await?;
        return Ok(app.read_stale(&query, applied));
    }
    match node.query_to::<KvApp>(group, query).await? {
        (_, KvResult::Read(r)) => Ok(r),
        (_, KvResult::Written(_)) => Err(RequestError::WrongKind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KvCommand;

    fn put(kv: &mut Kv, gsn: u64, key: &str, len: usize) {
        kv.apply(
            gsn,
            &KvCommand::Put {
                key: key.into(),
                value: Bytes::from(vec![b'v'; len]),
                cas: None,
            },
        );
    }

    fn page(kv: &Kv, prefix: &str, after: Option<&str>, limit: usize) -> ReadResult {
        Query {
            key: prefix.into(),
            recurse: true,
            after: after.map(Into::into),
            limit,
        }
        .run(Slot(1), kv)
    }

    #[test]
    fn a_state_announcing_more_entries_than_it_holds_is_refused_without_allocating_them() {
        // Found by fuzzing (fuzz/regressions/app_state/kv-huge-map-length): format 1, then a
        // map length of about 1.3 × 10^18 and nothing behind it. This aborted the process.
        let bomb = [FORMAT, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0x00];
        let decoded: Result<Kv, _> = decode_with_format(FORMAT, &bomb);
        assert!(matches!(decoded, Err(StateError::Undecodable(_))));
        // The same for the token list behind two empty maps.
        let bomb = [FORMAT, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        let decoded: Result<Kv, _> = decode_with_format(FORMAT, &bomb);
        assert!(matches!(decoded, Err(StateError::Undecodable(_))));

        // A real state still goes round.
        let mut kv = Kv::default();
        for i in 0..50 {
            put(&mut kv, i, &format!("k{i}"), 3);
        }
        kv.apply_request(
            60,
            &crate::KvRequest {
                token: Some("t".into()),
                cmd: KvCommand::Delete {
                    key: "k1".into(),
                    cas: None,
                },
            },
        );
        let again: Kv = decode_with_format(FORMAT, &KvApp::encode_state(&kv)).unwrap();
        assert_eq!(again, kv);
    }

    #[test]
    fn a_listing_comes_in_pages_bounded_in_entries_and_bytes() {
        let mut kv = Kv::default();
        for i in 0..25 {
            put(&mut kv, i, &format!("a/{i:02}"), 10);
        }
        put(&mut kv, 30, "b/other", 10);
        // By count: 10, 10, then the last 5 with no continuation.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let p = page(&kv, "a/", after.as_deref(), 10);
            assert!(p.entries.len() <= 10);
            seen.extend(p.entries.iter().map(|(k, _)| k.clone()));
            match p.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let all: Vec<String> = (0..25).map(|i| format!("a/{i:02}")).collect();
        assert_eq!(
            seen, all,
            "every key once, in order, nothing from another prefix"
        );
        // By bytes: values of 1 MiB make pages of three (a fourth would pass 4 MiB), however
        // high the limit.
        let mut big = Kv::default();
        for i in 0..9 {
            put(&mut big, i, &format!("big/{i}"), 1 << 20);
        }
        let first = page(&big, "big/", None, PAGE_MAX);
        assert_eq!(
            first.entries.len(),
            3,
            "a page holds at most 4 MiB of keys and values"
        );
        assert_eq!(first.next.as_deref(), Some("big/2"));
        // A value larger than the cap still comes, alone.
        let mut huge = Kv::default();
        put(&mut huge, 1, "h/1", PAGE_BYTES_MAX + 1);
        put(&mut huge, 2, "h/2", 1);
        let p = page(&huge, "h/", None, PAGE_MAX);
        assert_eq!((p.entries.len(), p.next.as_deref()), (1, Some("h/1")));
    }
}
