//! A map whose entries expire: lookups ignore expired entries, and expired entries are swept
//! when the map has doubled since the last sweep, so each operation stays O(1) amortized and the
//! memory follows the live entries.

use std::collections::HashMap;

/// Entries by key, each with its expiry (epoch ms).
pub struct Expiring<V> {
    map: HashMap<String, (i64, V)>,
    sweep_at: usize,
}

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Expiring {
            map: HashMap::new(),
            sweep_at: 1024,
        }
    }
}

impl<V> Expiring<V> {
    /// Insert `value` under `key` until `expires_at`.
    pub fn insert(&mut self, key: String, expires_at: i64, value: V, now: i64) {
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, (exp, _)| *exp > now);
            self.sweep_at = (self.map.len() * 2).max(1024);
        }
        self.map.insert(key, (expires_at, value));
    }

    /// The live entry of `key`.
    pub fn get(&self, key: &str, now: i64) -> Option<&V> {
        self.map
            .get(key)
            .filter(|(exp, _)| *exp > now)
            .map(|(_, v)| v)
    }

    /// The live entry of `key`, mutable.
    pub fn get_mut(&mut self, key: &str, now: i64) -> Option<&mut V> {
        self.map
            .get_mut(key)
            .filter(|(exp, _)| *exp > now)
            .map(|(_, v)| v)
    }

    /// Remove `key`: its value, if it was live.
    pub fn remove(&mut self, key: &str, now: i64) -> Option<V> {
        self.map
            .remove(key)
            .filter(|(exp, _)| *exp > now)
            .map(|(_, v)| v)
    }

    /// The live entries.
    pub fn iter(&self, now: i64) -> impl Iterator<Item = (&String, &V)> {
        self.map
            .iter()
            .filter(move |(_, (exp, _))| *exp > now)
            .map(|(k, (_, v))| (k, v))
    }

    /// Keep only the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.map.retain(|_, (_, v)| keep(v));
    }

    /// Entries held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// An [`Expiring`] map split into independently locked shards by key hash: concurrent requests
/// rarely wait for each other, and a sweep or a resize stalls only the requests of one shard.
pub struct Sharded<V> {
    shards: Vec<std::sync::Mutex<Expiring<V>>>,
}

impl<V> Default for Sharded<V> {
    fn default() -> Self {
        Sharded {
            shards: (0..64).map(|_| Default::default()).collect(),
        }
    }
}

impl<V> Sharded<V> {
    /// Run `f` on the shard of `key`.
    pub fn with<R>(&self, key: &str, f: impl FnOnce(&mut Expiring<V>) -> R) -> R {
        let i = xxhash_rust::xxh3::xxh3_64(key.as_bytes()) as usize % self.shards.len();
        f(&mut mfascope_core::sync::lock(&self.shards[i]))
    }

    /// Keep only the entries `keep` says yes to, in every shard.
    pub fn retain(&self, mut keep: impl FnMut(&V) -> bool) {
        for s in &self.shards {
            mfascope_core::sync::lock(s).retain(&mut keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_entries_are_invisible_then_swept() {
        let mut m = Expiring::default();
        for i in 0..1024 {
            m.insert(format!("old{i}"), 100, i, 0);
        }
        assert_eq!(m.get("old7", 99), Some(&7));
        assert_eq!(m.get("old7", 100), None, "expired at its expiry");
        m.insert("new".into(), 1000, 1, 200);
        assert_eq!(m.len(), 1, "the expired 1024 were swept");
        assert_eq!(m.remove("new", 999), Some(1));
    }
}
