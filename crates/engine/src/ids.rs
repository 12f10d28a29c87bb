//! Ids of the engine's handles, and the hash the registry keys them with.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

/// Handles by id. Every `write()` from the host looks its stream up here, so the hash is one multiply
/// (ids are sequential `u32`s, nothing an attacker picks) rather than SipHash, which was the engine's
/// second-largest item in a profile of the callback proxy.
pub(crate) type IdMap<V> = Mutex<HashMap<u32, V, BuildHasherDefault<IdHasher>>>;

/// A hasher for sequential `u32` ids (see [`IdMap`]).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

/// 2^64 / φ: multiplying by it spreads sequential ids over the high bits (Fibonacci hashing), which
/// hashbrown's control bytes use.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(FIBONACCI);
        }
    }
    fn write_u32(&mut self, id: u32) {
        self.0 = (id as u64).wrapping_mul(FIBONACCI);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

