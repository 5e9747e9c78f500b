//! The CPU work behind the POST routes: pure functions that the pool (or hyper's
//! `spawn_blocking`) runs.

use std::cell::RefCell;
use std::sync::OnceLock;

/// A parsed PHC hash string: what [`Job::run_into`] verifies passwords against.
pub use argon2::password_hash::PasswordHashString;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};

/// The zstd level of `/compress`: the library's default, a good speed/ratio balance.
pub const ZSTD_LEVEL: i32 = 3;

/// The password whose hash [`default_password_hash`] is.
pub const DEFAULT_PASSWORD: &str = "ringpool";

/// [`DEFAULT_PASSWORD`] hashed with Argon2id (v19, m = 19456 KiB, t = 2, p = 1: RustCrypto's
/// and OWASP's defaults) and the salt [`DEFAULT_SALT`]; a test recomputes it.
pub const DEFAULT_PASSWORD_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$cmluZ3Bvb2wtc2VydmVy$\
+mArNGdmw3fooXHtCFaNMFOM2dkU9OVnEAd75IRE5os";

/// The salt of [`DEFAULT_PASSWORD_PHC`] (base64 of `ringpool-server`).
pub const DEFAULT_SALT: &str = "cmluZ3Bvb2wtc2VydmVy";

/// The body of a successful verification.
pub const OK_TRUE: &[u8] = br#"{"ok":true}"#;
/// The body of a failed verification.
pub const OK_FALSE: &[u8] = br#"{"ok":false}"#;

/// A CPU job: what a POST route runs on its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Job {
    /// [`hash`]
    Hash,
    /// [`compress`]
    Compress,
    /// [`verify`] against [`default_password_hash`]
    Verify,
}

/// What a job answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The response status (200, or 500 if the work failed).
    pub status: u16,
    /// The response's `Content-Type`.
    pub content_type: &'static str,
    /// The response body.
    pub body: Vec<u8>,
}

impl Output {
    /// The 500 answer: the work failed, or its job panicked or never ran.
    pub fn internal_error() -> Output {
        Output {
            status: 500,
            content_type: "text/plain",
            body: b"Internal Server Error\n".to_vec(),
        }
    }
}

impl Job {
    /// Runs the job on a request body (`/password/verify` against
    /// [`default_password_hash`]).
    pub fn run(self, body: &[u8]) -> Output {
        let mut out = Vec::new();
        let (status, content_type) = self.run_into(body, default_password_hash(), &mut out);
        Output {
            status,
            content_type,
            body: out,
        }
    }

    /// Runs the job on a request body, writing the response body into `out`
    /// (cleared first; its allocation is reused where the work allows: a
    /// caller that keeps `out` across requests makes `/hash` and
    /// `/password/verify` allocate nothing); `/password/verify` checks the
    /// body against `password`. Returns the status and the `Content-Type`;
    /// on a failure, `out` holds [`Output::internal_error`]'s body.
    pub fn run_into(
        self,
        body: &[u8],
        password: &PasswordHashString,
        out: &mut Vec<u8>,
    ) -> (u16, &'static str) {
        out.clear();
        match self {
            Job::Hash => {
                out.extend_from_slice(blake3::hash(body).to_hex().as_bytes());
                (200, "text/plain")
            }
            Job::Compress => match compress(body) {
                Ok(z) => {
                    *out = z;
                    (200, "application/zstd")
                }
                Err(_) => {
                    let e = Output::internal_error();
                    *out = e.body;
                    (e.status, e.content_type)
                }
            },
            Job::Verify => {
                out.extend_from_slice(if verify(body, password) {
                    OK_TRUE
                } else {
                    OK_FALSE
                });
                (200, "application/json")
            }
        }
    }
}

/// The BLAKE3 hash of `body`, as 64 lowercase hex digits.
pub fn hash(body: &[u8]) -> String {
    blake3::hash(body).to_hex().to_string()
}

thread_local! {
    /// One compression context per thread, reused across jobs.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
}

/// `body` compressed as one zstd frame at [`ZSTD_LEVEL`] (with its content size, so
/// `zstd -d` and `zstd::bulk::decompress` know the output size).
///
/// # Errors
///
/// Whatever zstd reports (in practice only allocation failure).
pub fn compress(body: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Compressor::new(ZSTD_LEVEL)?);
        }
        match slot.as_mut() {
            Some(compressor) => compressor.compress(body),
            None => unreachable!("filled above"),
        }
    })
}

/// Whether `password` matches the PHC string `hash` (any algorithm and parameters the
/// `argon2` crate reads from it; Argon2id here).
pub fn verify(password: &[u8], hash: &PasswordHashString) -> bool {
    Argon2::default()
        .verify_password(password, &hash.password_hash())
        .is_ok()
}

/// Hashes `password` with Argon2id's defaults and `salt` (B64, as in a PHC string).
///
/// # Errors
///
/// If `salt` is not a valid PHC salt.
pub fn hash_password(
    password: &[u8],
    salt: &str,
) -> Result<PasswordHashString, argon2::password_hash::Error> {
    let salt = SaltString::from_b64(salt)?;
    Ok(Argon2::default()
        .hash_password(password, &salt)?
        .serialize())
}

/// Parses a PHC string for `/password/verify` (`ringpool serve --password-hash`): an
/// Argon2 hash (`$argon2id$`, `$argon2i$` or `$argon2d$`) with its parameters and salt.
///
/// # Errors
///
/// A message naming what is wrong: not a PHC string, or not an Argon2 one.
pub fn parse_password_hash(phc: &str) -> Result<PasswordHashString, String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC hash string ({e})"))?;
    let algorithm = hash.algorithm.as_str();
    if !matches!(algorithm, "argon2id" | "argon2i" | "argon2d") {
        return Err(format!(
            "the algorithm is {algorithm}; /password/verify checks Argon2 hashes (argon2id, argon2i, argon2d)"
        ));
    }
    // The parameters must be ones argon2 accepts, or every check would fail.
    argon2::Params::try_from(&hash).map_err(|e| format!("bad Argon2 parameters ({e})"))?;
    Ok(hash.serialize())
}

/// The hash `/password/verify` checks bodies against: [`DEFAULT_PASSWORD_PHC`], parsed
/// once.
pub fn default_password_hash() -> &'static PasswordHashString {
    static HASH: OnceLock<PasswordHashString> = OnceLock::new();
    HASH.get_or_init(|| match PasswordHash::new(DEFAULT_PASSWORD_PHC) {
        Ok(hash) => hash.serialize(),
        Err(e) => unreachable!("DEFAULT_PASSWORD_PHC is tested to parse: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_blake3_hex() {
        // The BLAKE3 test vector for the empty input.
        assert_eq!(
            hash(b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(hash(&[7; 16384]).len(), 64);
    }

    #[test]
    fn password_hashes_are_parsed_or_refused_with_a_reason() {
        let own = hash_password(b"hunter2", "c29tZXNhbHQxMjM0").unwrap();
        let parsed = parse_password_hash(own.as_str()).unwrap();
        let mut out = Vec::new();
        Job::Verify.run_into(b"hunter2", &parsed, &mut out);
        assert_eq!(out, OK_TRUE);
        Job::Verify.run_into(b"ringpool", &parsed, &mut out);
        assert_eq!(out, OK_FALSE);
        assert!(parse_password_hash(DEFAULT_PASSWORD_PHC).is_ok());
        assert!(parse_password_hash("hunter2").unwrap_err().contains("PHC"));
        let e = parse_password_hash("$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
            .unwrap_err();
        assert!(e.contains("pbkdf2-sha256"), "{e}");
        let e = parse_password_hash("$argon2id$v=19$m=1,t=0,p=1$c29tZXNhbHQxMjM0$aGFzaGhhc2hoYXNo")
            .unwrap_err();
        assert!(e.contains("parameters"), "{e}");
    }

    #[test]
    fn compress_round_trips() {
        let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let packed = compress(&body).unwrap();
        assert!(packed.len() < body.len() / 4);
        assert_eq!(zstd::bulk::decompress(&packed, body.len()).unwrap(), body);
        assert_eq!(zstd::decode_all(&compress(b"").unwrap()[..]).unwrap(), b"");
    }

    #[test]
    fn default_hash_is_argon2id_of_ringpool() {
        assert_eq!(
            hash_password(DEFAULT_PASSWORD.as_bytes(), DEFAULT_SALT)
                .unwrap()
                .as_str(),
            DEFAULT_PASSWORD_PHC
        );
        let h = default_password_hash();
        assert_eq!(h.password_hash().algorithm.as_str(), "argon2id");
        assert!(verify(b"ringpool", h));
        assert!(!verify(b"ringpool ", h));
        assert!(!verify(b"", h));
    }

    #[test]
    fn jobs() {
        assert_eq!(Job::Verify.run(b"ringpool").body, OK_TRUE);
        assert_eq!(Job::Verify.run(b"nope").body, OK_FALSE);
        let out = Job::Hash.run(b"abc");
        assert_eq!((out.status, out.body.len()), (200, 64));
        assert_eq!(Job::Compress.run(b"abc").content_type, "application/zstd");
    }
}
