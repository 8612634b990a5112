//! Decoding the persistent collections one element at a time. The collections' own
//! `Deserialize` allocates room for the length the encoding announces before reading an
//! element, so a peer's snapshot (or a corrupt one) announcing 10^18 entries aborted the node
//! (found by fuzzing: `fuzz/regressions/app_state/kv-huge-map-length`). Here a length is only
//! a hint: memory grows with the elements actually read, and a short input is an error.
//! Every persistent collection in the store's state (`store::Kv`, `mvcc::Mvcc`) decodes
//! through here.

use std::fmt;
use std::marker::PhantomData;

use imbl::{OrdMap, OrdSet, Vector};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

pub(crate) fn ord_map<'de, D, K, V>(deserializer: D) -> Result<OrdMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de> + Clone,
{
    struct Entries<K, V>(PhantomData<(K, V)>);
    impl<'de, K, V> Visitor<'de> for Entries<K, V>
    where
        K: Deserialize<'de> + Ord + Clone,
        V: Deserialize<'de> + Clone,
    {
        type Value = OrdMap<K, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = OrdMap::new();
            while let Some((k, v)) = access.next_entry()? {
                map.insert(k, v);
            }
            Ok(map)
        }
    }
    deserializer.deserialize_map(Entries(PhantomData))
}

pub(crate) fn vector<'de, D, T>(deserializer: D) -> Result<Vector<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Clone,
{
    struct Elements<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de> + Clone> Visitor<'de> for Elements<T> {
        type Value = Vector<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut vector = Vector::new();
            while let Some(element) = access.next_element()? {
                vector.push_back(element);
            }
            Ok(vector)
        }
    }
    deserializer.deserialize_seq(Elements(PhantomData))
}

pub(crate) fn ord_set<'de, D, T>(deserializer: D) -> Result<OrdSet<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Ord + Clone,
{
    struct Elements<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de> + Ord + Clone> Visitor<'de> for Elements<T> {
        type Value = OrdSet<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a set")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut set = OrdSet::new();
            while let Some(element) = access.next_element()? {
                set.insert(element);
            }
            Ok(set)
        }
    }
    deserializer.deserialize_seq(Elements(PhantomData))
}
