//! `funnel token`: makes tokens and their hashes, so operators give the
//! service only hashes (`--tokens-file` / `FUNNEL_TOKENS`) and hand the
//! plaintext to whoever it is for, once. Runs offline.

use std::io::Read;

use funnel_pipeline::auth::{TokenHash, generate_token};
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::output::Report;

#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a random token and the line that lets the service accept it.
    New(NewTokenArgs),
    /// The SHA-256 of a token read from standard input (not from a flag,
    /// which would land in the shell history).
    Hash,
}

/// Roles a token can have; see the README's roles table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    Service,
    Manager,
    Ops,
    Rep,
}

impl TokenRole {
    fn as_str(self) -> &'static str {
        match self {
            TokenRole::Service => "service",
            TokenRole::Manager => "manager",
            TokenRole::Ops => "ops",
            TokenRole::Rep => "rep",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct NewTokenArgs {
    /// Name of the principal, recorded as the actor of its changes.
    #[arg(long)]
    pub name: String,
    #[arg(long, value_enum)]
    pub role: TokenRole,
    /// Owner id whose opportunities a rep may see (reps only).
    #[arg(long)]
    pub owner: Option<String>,
}

/// A new token and how to configure it.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    pub token: String,
    pub sha256: String,
    /// A line for `--tokens-file`.
    pub tokens_file_line: String,
    /// An entry for `FUNNEL_TOKENS`.
    pub tokens_env_entry: String,
}

impl Report for NewToken {
    fn human(&self) -> String {
        format!(
            "token (give it to its holder now; it is not stored anywhere): {}\n\
             line for --tokens-file:   {}\n\
             entry for FUNNEL_TOKENS:  {}",
            self.token, self.tokens_file_line, self.tokens_env_entry
        )
    }
}

/// The hash of a token.
#[derive(Debug, Clone, Serialize)]
pub struct HashedToken {
    pub sha256: String,
}

impl Report for HashedToken {
    fn human(&self) -> String {
        self.sha256.clone()
    }
}

pub fn new_token(args: &NewTokenArgs) -> Result<NewToken> {
    let name = args.name.trim();
    if name.is_empty() || name.contains(':') || name.contains(',') || name.chars().any(char::is_whitespace) {
        return Err(CliError::invalid("--name", "must be non-empty, without spaces, commas or colons"));
    }
    let owner = match (args.role, args.owner.as_deref().map(str::trim)) {
        (TokenRole::Rep, Some(owner)) if !owner.is_empty() && !owner.contains([':', ',']) => owner,
        (TokenRole::Rep, _) => return Err(CliError::invalid("--owner", "a rep needs an owner id, without : or ,")),
        (_, None) => "",
        (_, Some(_)) => return Err(CliError::invalid("--owner", "only a rep has an owner")),
    };
    let token = generate_token();
    let sha256 = TokenHash::of(&token).to_hex();
    let role = args.role.as_str();
    let mut line = serde_json::json!({ "name": name, "role": role, "sha256": sha256 });
    if !owner.is_empty() {
        line["owner"] = serde_json::Value::from(owner);
    }
    Ok(NewToken {
        tokens_file_line: line.to_string(),
        tokens_env_entry: format!("{name}:{role}:{owner}:{sha256}"),
        token,
        sha256,
    })
}

/// Hashes the first line of standard input.
pub fn hash_stdin() -> Result<HashedToken> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|error| CliError::invalid("stdin", format!("unreadable: {error}")))?;
    let token = input.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(CliError::invalid("stdin", "give the token on standard input"));
    }
    Ok(HashedToken { sha256: TokenHash::of(token).to_hex() })
}
