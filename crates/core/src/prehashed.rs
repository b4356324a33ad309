//! A `HashMap` hasher for keys that already are uniformly distributed hashes (session ids,
//! SHA-256 digests): it uses their last 8 bytes as they are instead of hashing them again.

use std::hash::{BuildHasherDefault, Hasher};

#[derive(Debug, Default, Clone, Copy)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    /// Keeps the last 8 bytes written: the key's own bits (a slice's length prefix, written
    /// first, is overwritten).
    fn write(&mut self, bytes: &[u8]) {
        let mut last = [0u8; 8];
        let n = bytes.len().min(8);
        last[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
        self.0 = u64::from_be_bytes(last);
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// `HashMap<K, V, Prehashed>` for pre-hashed keys.
pub type Prehashed = BuildHasherDefault<PrehashedHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn uses_the_key_bits() {
        let b = Prehashed::default();
        assert_eq!(b.hash_one(0x1234_u128), 0x1234);
        let mut digest = [0u8; 32];
        digest[31] = 7;
        digest[24] = 1;
        assert_eq!(b.hash_one(digest), 0x0100_0000_0000_0007);
    }
}
