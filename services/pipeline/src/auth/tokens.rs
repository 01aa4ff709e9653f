//! Bearer tokens: only their SHA-256 hashes are ever held, loaded from a
//! JSON Lines file and/or a compact environment variable, and compared in
//! constant time.
//!
//! File (`--tokens-file`), one principal per line; blank lines and lines
//! starting with `#` are skipped:
//!
//! ```text
//! {"name": "ci", "role": "service", "sha256": "<64 hex digits>"}
//! {"name": "ana", "role": "rep", "owner": "ana", "sha256": "<64 hex digits>"}
//! ```
//!
//! Environment (`FUNNEL_TOKENS`), entries separated by commas or
//! whitespace: `NAME:ROLE:OWNER:SHA256`, OWNER empty unless ROLE is `rep`
//! (`ci:service::<hex>,ana:rep:ana:<hex>`).

use std::fmt;

use funnel_domain::limits::MAX_SHORT_TEXT;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Principal, Role};

/// Bytes of randomness in a generated token (256 bits).
const GENERATED_TOKEN_BYTES: usize = 32;

/// Prefix of generated tokens, so a leaked one is easy to recognise in logs
/// and secret scanners.
pub const TOKEN_PREFIX: &str = "fnl_";

/// The SHA-256 of a token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a plaintext token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Reads 64 hex digits (either case).
    pub fn parse_hex(text: &str) -> Result<Self, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| "sha256 must be 64 hex digits (`funnel token hash` makes one)".to_owned())?;
        Ok(Self(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for TokenHash {
    /// Only a prefix: enough to tell entries apart in a log.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// A new random token: `fnl_` and 64 hex digits.
pub fn generate_token() -> String {
    let mut bytes = [0u8; GENERATED_TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The known tokens (as hashes) and whom each stands for.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<(TokenHash, Principal)>,
}

impl Tokens {
    /// Adds a principal; a hash already present is refused, since the same
    /// token cannot stand for two principals.
    pub fn add(&mut self, hash: TokenHash, principal: Principal) -> Result<(), String> {
        if self.entries.iter().any(|(known, _)| *known == hash) {
            return Err(format!("principal {:?} has the same token as an earlier one", principal.name));
        }
        self.entries.push((hash, principal));
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The principal a presented token stands for. Every known hash is
    /// compared, in constant time, whether or not one already matched.
    pub fn authenticate(&self, presented: &str) -> Option<&Principal> {
        let presented = TokenHash::of(presented);
        let mut found = None;
        for (hash, principal) in &self.entries {
            if bool::from(hash.0.ct_eq(&presented.0)) {
                found = Some(principal);
            }
        }
        found
    }

    /// Adds the principals of a tokens file's text; `origin` names the file
    /// in errors.
    pub fn add_file_text(&mut self, origin: &str, text: &str) -> Result<(), String> {
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |reason: String| format!("{origin} line {}: {reason}", index + 1);
            let entry: FileEntry = serde_json::from_str(line).map_err(|error| at(error.to_string()))?;
            let principal = principal(&entry.name, &entry.role, entry.owner.as_deref()).map_err(at)?;
            let hash = TokenHash::parse_hex(&entry.sha256).map_err(at)?;
            self.add(hash, principal).map_err(at)?;
        }
        Ok(())
    }

    /// Adds the principals of `FUNNEL_TOKENS`.
    pub fn add_env_text(&mut self, text: &str) -> Result<(), String> {
        for entry in text.split(|character: char| character == ',' || character.is_whitespace()) {
            if entry.is_empty() {
                continue;
            }
            let at = |reason: String| format!("FUNNEL_TOKENS entry starting {:?}: {reason}", prefix(entry));
            let parts: Vec<&str> = entry.split(':').collect();
            let [name, role, owner, hash] = parts.as_slice() else {
                return Err(at("must be NAME:ROLE:OWNER:SHA256 (OWNER empty unless ROLE is rep)".to_owned()));
            };
            let owner = (!owner.is_empty()).then_some(*owner);
            let principal = principal(name, role, owner).map_err(at)?;
            self.add(TokenHash::parse_hex(hash).map_err(at)?, principal).map_err(at)?;
        }
        Ok(())
    }
}

/// The start of an entry, for errors: never the hash itself.
fn prefix(entry: &str) -> String {
    entry.split(':').take(2).collect::<Vec<_>>().join(":")
}

/// One line of a tokens file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    role: String,
    #[serde(default)]
    owner: Option<String>,
    sha256: String,
}

fn principal(name: &str, role: &str, owner: Option<&str>) -> Result<Principal, String> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_SHORT_TEXT || name.chars().any(char::is_control) {
        return Err(format!("name must be 1 to {MAX_SHORT_TEXT} printable characters"));
    }
    let role = match (role, owner) {
        ("service", None) => Role::Service,
        ("manager", None) => Role::Manager,
        ("ops", None) => Role::Ops,
        ("rep", Some(owner)) if !owner.trim().is_empty() && owner.len() <= MAX_SHORT_TEXT => {
            Role::Rep { owner: owner.trim().to_owned() }
        }
        ("rep", _) => return Err("a rep needs an owner: the owner id of the opportunities it may see".to_owned()),
        ("service" | "manager" | "ops", Some(_)) => return Err(format!("only a rep has an owner, not {role}")),
        (other, _) => return Err(format!("role {other:?} is none of service, manager, ops, rep")),
    };
    Ok(Principal { name: name.to_owned(), role })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_token_authenticates_and_an_unknown_one_does_not() {
        let mut tokens = Tokens::default();
        let line = format!(
            r#"{{"name": "ana", "role": "rep", "owner": "ana-id", "sha256": "{}"}}"#,
            TokenHash::of("s3cret").to_hex()
        );
        tokens.add_file_text("tokens.jsonl", &format!("# reps\n\n{line}\n")).expect("a valid file");
        let principal = tokens.authenticate("s3cret").expect("the token is known");
        assert_eq!(principal.role, Role::Rep { owner: "ana-id".to_owned() });
        assert!(tokens.authenticate("s3cret ").is_none());
    }

    #[test]
    fn the_environment_form_takes_several_entries() {
        let mut tokens = Tokens::default();
        let text = format!("ci:service::{}, ana:rep:ana:{}", TokenHash::of("a").to_hex(), TokenHash::of("b").to_hex());
        tokens.add_env_text(&text).expect("valid entries");
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.authenticate("a").map(|principal| principal.name.as_str()), Some("ci"));
    }

    #[test]
    fn a_rep_without_an_owner_and_a_duplicate_token_are_refused() {
        let hash = TokenHash::of("a").to_hex();
        let error = Tokens::default().add_env_text(&format!("ana:rep::{hash}")).expect_err("no owner");
        assert!(error.contains("needs an owner"), "{error}");
        let error = Tokens::default().add_env_text(&format!("a:ops::{hash} b:ops::{hash}")).expect_err("duplicate");
        assert!(error.contains("same token"), "{error}");
        let error = Tokens::default().add_env_text("a:ops::xyz").expect_err("bad hash");
        assert!(error.contains("64 hex digits"), "{error}");
    }

    #[test]
    fn generated_tokens_differ_and_hash_to_64_hex_digits() {
        let first = generate_token();
        assert!(first.starts_with(TOKEN_PREFIX));
        assert_ne!(first, generate_token());
        assert_eq!(TokenHash::of(&first).to_hex().len(), 64);
        // Known answer: sha256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(TokenHash::of("abc").to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
