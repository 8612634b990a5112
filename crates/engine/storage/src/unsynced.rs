//! [`UnsyncedFile`]: a redb storage backend for the power-cut test mode.
//!
//! Writes stay in process memory until `sync_data`; only then do they reach the file (and are
//! fsynced). A SIGKILL therefore loses exactly what a power cut would lose: everything not
//! fsynced. A [`CrashHandle`] simulates the same inside one process, optionally *tearing* the
//! lost writes: a random subset of the dirty pages reaches the file, as a disk that reorders
//! and interrupts writes might leave it. redb must recover to its last durable commit either way.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::StorageBackend;

const PAGE: u64 = 4096;

#[derive(Debug)]
struct Inner {
    file: File,
    /// Length of the file as last synced.
    durable_len: u64,
    /// Length as redb sees it.
    len: u64,
    /// Written but not yet synced, by page index.
    dirty: BTreeMap<u64, Vec<u8>>,
    syncs: u64,
    crashed: bool,
    /// Armed crash: after this many more writes, crash, tearing pages by this seed.
    crash_after: Option<(u64, u64)>,
}

/// The backend. Create with [`UnsyncedFile::open`] and hand to
/// [`crate::Store::open_with_backend`].
#[derive(Debug)]
pub struct UnsyncedFile {
    inner: Arc<Mutex<Inner>>,
}

/// Simulates a crash of the process that owns an [`UnsyncedFile`].
#[derive(Debug, Clone)]
pub struct CrashHandle {
    inner: Arc<Mutex<Inner>>,
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash: the storage is gone")
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock leaves the pages consistent (each operation completes
    // under the lock), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl UnsyncedFile {
    /// Opens (or creates) `path`.
    ///
    /// # Errors
    /// The file's I/O error.
    pub fn open(path: &Path) -> io::Result<(UnsyncedFile, CrashHandle)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        let inner = Arc::new(Mutex::new(Inner {
            file,
            durable_len: len,
            len,
            dirty: BTreeMap::new(),
            syncs: 0,
            crashed: false,
            crash_after: None,
        }));
        Ok((
            UnsyncedFile {
                inner: inner.clone(),
            },
            CrashHandle { inner },
        ))
    }
}

/// Splits the byte range `offset..offset + len` at page boundaries: for each piece, the page
/// index, the offset within the page, the offset within the range, and the length.
fn pages(offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let pos = offset + done as u64;
        let (index, within) = (pos / PAGE, (pos % PAGE) as usize);
        let n = (PAGE as usize - within).min(len - done);
        let piece = (index, within, done, n);
        done += n;
        Some(piece)
    })
}

impl Inner {
    fn load_page(&self, index: u64) -> io::Result<Vec<u8>> {
        if let Some(p) = self.dirty.get(&index) {
            return Ok(p.clone());
        }
        let mut page = vec![0u8; PAGE as usize];
        let start = index * PAGE;
        if start < self.durable_len {
            let n = (self.durable_len - start).min(PAGE) as usize;
            self.file.read_exact_at(&mut page[..n], start)?;
        }
        Ok(page)
    }
}

impl StorageBackend for UnsyncedFile {
    fn len(&self) -> Result<u64, io::Error> {
        let inner = lock(&self.inner);
        if inner.crashed {
            return Err(crashed());
        }
        Ok(inner.len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let inner = lock(&self.inner);
        if inner.crashed {
            return Err(crashed());
        }
        if offset + out.len() as u64 > inner.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end",
            ));
        }
        for (index, within, done, n) in pages(offset, out.len()) {
            match inner.dirty.get(&index) {
                Some(p) => out[done..done + n].copy_from_slice(&p[within..within + n]),
                None => {
                    let page = inner.load_page(index)?;
                    out[done..done + n].copy_from_slice(&page[within..within + n]);
                }
            }
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut inner = lock(&self.inner);
        if inner.crashed {
            return Err(crashed());
        }
        if len < inner.len {
            // Zero what is cut off, so that growing again reads zeros as the contract demands.
            let keep_pages = len.div_ceil(PAGE);
            inner.dirty.retain(|i, _| *i < keep_pages);
            if !len.is_multiple_of(PAGE) {
                let index = len / PAGE;
                let mut page = inner.load_page(index)?;
                page[(len % PAGE) as usize..].fill(0);
                inner.dirty.insert(index, page);
            }
            if len < inner.durable_len {
                // Later reads of the cut region must see zeros even before a sync.
                let first = keep_pages;
                let last = inner.durable_len.div_ceil(PAGE);
                for i in first..last {
                    inner.dirty.insert(i, vec![0u8; PAGE as usize]);
                }
            }
        }
        inner.len = len;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut inner = lock(&self.inner);
        if inner.crashed {
            return Err(crashed());
        }
        let len = inner.len;
        inner.file.set_len(len)?;
        let dirty = std::mem::take(&mut inner.dirty);
        for (index, page) in dirty {
            let start = index * PAGE;
            if start >= len {
                continue;
            }
            let n = (len - start).min(PAGE) as usize;
            inner.file.write_all_at(&page[..n], start)?;
        }
        inner.file.sync_data()?;
        inner.durable_len = len;
        inner.syncs += 1;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut inner = lock(&self.inner);
        if inner.crashed {
            return Err(crashed());
        }
        if let Some((left, seed)) = inner.crash_after {
            if left == 0 {
                inner.crash_torn(seed)?;
                return Err(crashed());
            }
            inner.crash_after = Some((left - 1, seed));
        }
        if offset + data.len() as u64 > inner.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write past the end",
            ));
        }
        for (index, within, done, n) in pages(offset, data.len()) {
            let mut page = inner.load_page(index)?;
            page[within..within + n].copy_from_slice(&data[done..done + n]);
            inner.dirty.insert(index, page);
        }
        Ok(())
    }
}

impl Inner {
    /// Crash now; each dirty page reaches the file with probability 1/2, decided by `seed`.
    fn crash_torn(&mut self, seed: u64) -> io::Result<()> {
        let mut x = seed | 1;
        self.crash_with(|_| {
            // xorshift64: a test helper's coin, not a security matter.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x & 1 == 1
        })
    }

    fn crash_with(&mut self, mut tear: impl FnMut(u64) -> bool) -> io::Result<()> {
        self.crashed = true;
        self.crash_after = None;
        let dirty = std::mem::take(&mut self.dirty);
        for (index, page) in dirty {
            if tear(index) {
                self.file.write_all_at(&page, index * PAGE)?;
            }
        }
        self.file.sync_data()
    }
}

impl CrashHandle {
    /// Arms a crash in the middle of whatever comes next: after `writes` more page writes the
    /// backend crashes, keeping a random half of the unsynced pages (chosen by `seed`).
    pub fn crash_after_writes(&self, writes: u64, seed: u64) {
        lock(&self.inner).crash_after = Some((writes, seed));
    }

    /// True once crashed.
    #[must_use]
    pub fn has_crashed(&self) -> bool {
        lock(&self.inner).crashed
    }

    /// Fsyncs performed so far.
    #[must_use]
    pub fn syncs(&self) -> u64 {
        lock(&self.inner).syncs
    }

    /// Pages written since the last sync (what a crash now would lose).
    #[must_use]
    pub fn dirty_pages(&self) -> usize {
        lock(&self.inner).dirty.len()
    }

    /// Crashes: every later operation of the backend fails, and unsynced writes are lost,
    /// except the pages for which `tear` returns true, which reach the file anyway (a torn
    /// write). Pass `|_| false` for a clean power cut.
    ///
    /// # Errors
    /// The file's I/O error while writing torn pages.
    pub fn crash(&self, tear: impl FnMut(u64) -> bool) -> io::Result<()> {
        lock(&self.inner).crash_with(tear)
    }
}
