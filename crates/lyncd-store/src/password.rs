//! Password hashing: argon2id with the OWASP minimum parameters (m = 19 MiB, t = 2, p = 1),
//! stored as PHC strings so the parameters travel with each hash and can be raised later.
//!
//! These functions are synchronous and cost about 20 ms each (design/dependencies.md §2.7);
//! async callers run them on a bounded blocking pool.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

/// Memory cost in KiB.
pub const M_COST_KIB: u32 = 19_456;
/// Number of passes.
pub const T_COST: u32 = 2;
/// Lanes.
pub const P_COST: u32 = 1;

/// Upper bounds accepted from a stored hash. A hash is data: one planted with m = 4 GiB would
/// otherwise turn every sign-in attempt into an out-of-memory attack.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 16;

const PARAMS: Params = match Params::new(M_COST_KIB, T_COST, P_COST, None) {
    Ok(p) => p,
    Err(_) => panic!("the argon2 parameter constants are out of range"),
};

/// A hash of an unguessable password with exactly [`PARAMS`], so [`dummy_verify`] does the same
/// work as a real verify. `tests::dummy_hash_uses_current_parameters` keeps it in step.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$bHluY2QtZHVtbXktc2FsdA$ePNn0f8ZMlFFalqwTg4a6e2jvwrkfd6F35IAE0ZJ6qI";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordError {
    #[error("the stored password hash is not a valid argon2 PHC string ({0})")]
    Malformed(String),
    #[error(
        "the stored password hash asks for m={m} KiB, t={t}, p={p}, beyond what this server \
         allows (m ≤ {MAX_M_COST_KIB}, t ≤ {MAX_T_COST}, p ≤ {MAX_P_COST}); reset the password"
    )]
    ExcessiveCost { m: u32, t: u32, p: u32 },
    #[error("the password could not be hashed ({0})")]
    Hashing(String),
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

/// Hashes `password` with argon2id and the given salt; returns a PHC string such as
/// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`. The caller supplies 16 random bytes.
pub fn hash_password(password: &str, salt: &[u8; 16]) -> Result<String, PasswordError> {
    hasher()
        .hash_password_with_salt(password.as_bytes(), salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// True when `password` matches `phc`. The comparison is constant-time (inside argon2).
/// A hash that cannot be parsed, or that demands unreasonable cost, is an error, never `false`,
/// so a damaged credential is noticed instead of looking like a wrong password.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|e| PasswordError::Malformed(e.to_string()))?;
    let params = Params::try_from(&parsed).map_err(|e| PasswordError::Malformed(e.to_string()))?;
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m > MAX_M_COST_KIB || t > MAX_T_COST || p > MAX_P_COST {
        return Err(PasswordError::ExcessiveCost { m, t, p });
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(PasswordError::Malformed("it has no salt or no hash".into()));
    }
    // Argon2::default() takes algorithm, version and parameters from the PHC string.
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(PasswordError::Malformed(e.to_string())),
    }
}

/// Does the work of one [`verify_password`] and throws the result away. Call it when the user
/// does not exist, so an unknown user takes as long as a wrong password and user names cannot
/// be discovered by timing.
pub fn dummy_verify(password: &str) {
    // DUMMY_PHC is a constant checked by the tests, so the result carries no information.
    let _ = std::hint::black_box(verify_password(password, DUMMY_PHC));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; 16] = *b"0123456789abcdef";

    #[test]
    fn hash_is_argon2id_phc_with_the_chosen_parameters() {
        let phc = hash_password("correct horse", &SALT).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        // Deterministic for a fixed salt, different for another salt.
        assert_eq!(phc, hash_password("correct horse", &SALT).unwrap());
        assert_ne!(
            phc,
            hash_password("correct horse", b"fedcba9876543210").unwrap()
        );
    }

    #[test]
    fn verify_accepts_the_right_password_only() {
        let phc = hash_password("correct horse", &SALT).unwrap();
        assert_eq!(verify_password("correct horse", &phc), Ok(true));
        assert_eq!(verify_password("correct horsE", &phc), Ok(false));
        assert_eq!(verify_password("", &phc), Ok(false));
    }

    #[test]
    fn malformed_hashes_are_errors_not_false() {
        for bad in [
            "",
            "plaintext",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$argon2id$v=19$m=nope,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
            "$bcrypt$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(
                matches!(verify_password("x", bad), Err(PasswordError::Malformed(_))),
                "{bad:?} -> {:?}",
                verify_password("x", bad)
            );
        }
    }

    #[test]
    fn a_hash_demanding_huge_memory_is_refused_before_any_work() {
        let phc = "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$ePNn0f8ZMlFFalqwTg4a6e2jvwrkfd6F35IAE0ZJ6qI";
        assert_eq!(
            verify_password("x", phc),
            Err(PasswordError::ExcessiveCost {
                m: 4_194_304,
                t: 2,
                p: 1
            })
        );
    }

    #[test]
    fn dummy_hash_uses_current_parameters() {
        let parsed = PasswordHash::new(DUMMY_PHC).unwrap();
        let fresh = hash_password("x", &SALT).unwrap();
        let fresh = PasswordHash::new(&fresh).unwrap();
        assert_eq!(parsed.algorithm, fresh.algorithm);
        assert_eq!(parsed.version, fresh.version);
        assert_eq!(parsed.params, fresh.params);
        assert_eq!(parsed.hash.map(|h| h.len()), fresh.hash.map(|h| h.len()));
        // It verifies cleanly (no error path, which would be cheaper than a real verify).
        assert_eq!(verify_password("anything", DUMMY_PHC), Ok(false));
    }
}
