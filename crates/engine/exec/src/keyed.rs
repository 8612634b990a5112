//! [`KeyedState`]: an ordered map whose every access is checked against the running command's
//! locks, for applications to keep their state in.

use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard, PoisonError};

use imbl::OrdMap;

use crate::locks::Ctx;

/// An ordered map shared by concurrently running commands. Every access names the command's
/// [`Ctx`] and is checked against its locks, so a command that touches a key it did not lock
/// is reported (a panic naming the command and key) instead of silently racing.
///
/// The map is persistent (structure-sharing): [`KeyedState::copy`] is O(1), which is what
/// makes snapshots cheap. The mutex only makes the map's memory safe to share; isolation
/// between commands comes from the executor's locks.
#[derive(Debug, Default)]
pub struct KeyedState<K: Clone + Ord, V: Clone> {
    map: Mutex<OrdMap<K, V>>,
}

impl<K: Clone + Ord + Debug, V: Clone> KeyedState<K, V> {
    /// A state holding `map`.
    pub fn new(map: OrdMap<K, V>) -> Self {
        KeyedState {
            map: Mutex::new(map),
        }
    }

    fn map(&self) -> MutexGuard<'_, OrdMap<K, V>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key` (the command must have locked it for reading or writing).
    pub fn get(&self, ctx: &Ctx<'_, K>, key: &K) -> Option<V> {
        ctx.check_read(key);
        self.map().get(key).cloned()
    }

    /// Sets `key` (the command must have locked it for writing); returns the old value.
    pub fn insert(&self, ctx: &Ctx<'_, K>, key: K, value: V) -> Option<V> {
        ctx.check_write(&key);
        self.map().insert(key, value)
    }

    /// Removes `key` (the command must have locked it for writing); returns the old value.
    pub fn remove(&self, ctx: &Ctx<'_, K>, key: &K) -> Option<V> {
        ctx.check_write(key);
        self.map().remove(key)
    }

    /// The whole map, for a scan (the command must hold [`crate::Locks::ReadAll`] or
    /// [`crate::Locks::Exclusive`]).
    pub fn scan(&self, ctx: &Ctx<'_, K>) -> OrdMap<K, V> {
        ctx.check_scan();
        self.map().clone()
    }

    /// A copy of the whole map, unchecked: consistent (equal to the state after some prefix of
    /// the GSN order) only when called with everything locked, as in
    /// [`crate::Application::snapshot`]. Elsewhere it is a stale read: each key's value is one
    /// its serial history had, but keys may reflect different GSNs.
    pub fn copy(&self) -> OrdMap<K, V> {
        self.map().clone()
    }

    /// Replaces the whole map (with everything locked, as in [`crate::Application::restore`]).
    pub fn replace(&self, map: OrdMap<K, V>) {
        *self.map() = map;
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }
}
