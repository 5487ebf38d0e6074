//! Per-run resource limits: memory (with a record of the attempt that broke
//! the cap, so the result can name it).

use wasmtime::ResourceLimiter;

/// Caps linear memory growth and remembers whether the cap was hit.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_bytes: usize,
    /// The size a refused growth asked for, if any.
    pub refused: Option<usize>,
}

impl MemoryLimiter {
    /// A limiter allowing at most `max_bytes` of linear memory per memory.
    pub fn new(max_bytes: u64) -> Self {
        MemoryLimiter {
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            refused: None,
        }
    }

    /// The cap, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(desired);
            // Trap right away: a refused grow would otherwise surface as a
            // guest abort ("memory allocation failed") that names nothing.
            wasmtime::bail!(
                "memory limit of {} bytes exceeded: tried to grow to {desired} bytes",
                self.max_bytes
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
