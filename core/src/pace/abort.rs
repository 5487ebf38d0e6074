//! A spawned task that ends with its owner.

use tokio::task::JoinHandle;

/// Aborts the task when dropped (a finished task ignores it). Await the
/// task through `&mut guard.0`.
pub struct AbortOnDrop<T>(pub JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
