//! Secrets granted to the check by the operator.
//!
//! Declare the names you read with [`Metadata::secret`](crate::Metadata::secret);
//! the operator grants them (from an environment variable, a file or a
//! Kubernetes Secret). Secret values are redacted by the host from logs,
//! results and error messages. Configuration values may also reference
//! secrets as `{{secret.NAME}}`; the host substitutes those before the run.

pub use crate::SecretError;
use crate::bindings::vantage::check::secrets as raw;

/// Read the secret called `name`.
///
/// ```no_run
/// let token = vantage_sdk::secrets::get("api-token")?;
/// # Ok::<(), vantage_sdk::SecretError>(())
/// ```
pub fn get(name: &str) -> Result<String, SecretError> {
    raw::get(name).map_err(SecretError::from)
}
