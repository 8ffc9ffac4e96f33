use sha2::{Digest, Sha256};

/// A source of random bytes, passed into protocol cores so tests can make them repeatable.
pub trait Entropy {
    fn fill(&mut self, buf: &mut [u8]);

    fn bytes<const N: usize>(&mut self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

/// The operating system's CSPRNG. The only I/O in this crate.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        // getrandom only fails when the OS has no entropy source at all; nothing can go on then.
        getrandom::fill(buf).expect("the operating system's random number generator failed");
    }
}

/// Deterministic bytes for tests and benchmarks: SHA-256 in counter mode over a seed.
/// Never use it for real keys.
#[derive(Debug, Clone)]
pub struct SeededEntropy {
    seed: [u8; 32],
    counter: u64,
}

impl SeededEntropy {
    pub fn new(seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        SeededEntropy {
            seed: s,
            counter: 0,
        }
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(32) {
            let block = Sha256::new()
                .chain_update(self.seed)
                .chain_update(self.counter.to_le_bytes())
                .finalize();
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

impl<E: Entropy + ?Sized> Entropy for &mut E {
    fn fill(&mut self, buf: &mut [u8]) {
        (**self).fill(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_repeatable_and_seed_dependent() {
        let a: [u8; 40] = SeededEntropy::new(1).bytes();
        let b: [u8; 40] = SeededEntropy::new(1).bytes();
        let c: [u8; 40] = SeededEntropy::new(2).bytes();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a[..32], a[8..40]);
    }

    #[test]
    fn os_entropy_is_not_constant() {
        let a: [u8; 32] = OsEntropy.bytes();
        let b: [u8; 32] = OsEntropy.bytes();
        assert_ne!(a, b);
    }
}
