//! How [`crate::serve_with`] runs the server, beyond the listener and store.

use crate::limits::ServerLimits;
use crate::security::Security;

/// Options of the server; [`Default`] is what [`crate::serve`] uses.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Concurrency, deadline and message size limits.
    pub limits: ServerLimits,
    /// Tokens, TLS and the open-mode rule; the default is open plaintext.
    pub security: Security,
}

impl ServeOptions {
    /// These options with other limits.
    pub fn with_limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// These options with other security.
    pub fn with_security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }
}
