//! Running one of the library's async calls from synchronous code, whatever
//! thread that code runs on.
//!
//! Synchronous entry points (figment's `Provider::data`, config-rs's
//! `Source::collect`, `run_blocking`) are called from a plain `fn main` and
//! from inside `#[tokio::main]` alike. Tokio offers no public way to tell an
//! async task from a `spawn_blocking` thread: `Handle::try_current()`
//! succeeds in both, `task::try_id()` is `Some` in both (a blocking closure
//! is polled as a task), and `Handle::block_on` panics in the first
//! ("Cannot start a runtime from within a runtime") while it works in the
//! second. So the rule does not guess:
//!
//! - no runtime on this thread: a current-thread runtime of its own, driven
//!   right here;
//! - a runtime on this thread (an async task, a `spawn_blocking` thread, a
//!   thread inside `Runtime::enter`): a scoped thread with a runtime of its
//!   own runs the call, and this thread waits for it.
//!
//! The call never needs the caller's runtime to make progress (the
//! transport keeps one HTTP client per runtime), so waiting cannot deadlock
//! a current-thread runtime; it only holds that thread for the call's
//! duration, which the transport's deadline bounds.

use std::future::Future;

use crate::Error;

/// Runs a fallible call to completion from synchronous code (see the
/// module docs); a thread or runtime that cannot be started is an error.
pub(crate) fn run<T, F>(make: impl FnOnce() -> F + Send) -> Result<T, Error>
where
    T: Send,
    F: Future<Output = Result<T, Error>>,
{
    block_on(make).unwrap_or_else(|e| {
        Err(Error::config(
            "async runtime",
            format!("cannot start a thread or runtime for a blocking call: {e}"),
        ))
    })
}

/// Runs the future `make` returns to completion, from any thread (see the
/// module's documentation). A panic inside the call resumes in the caller.
///
/// Fails only when a runtime or a thread cannot be started.
fn block_on<T, F>(make: impl FnOnce() -> F + Send) -> std::io::Result<T>
where
    T: Send,
    F: Future<Output = T>,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(own_runtime()?.block_on(make()));
    }
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("vault-secret-blocking".into())
            .spawn_scoped(scope, || -> std::io::Result<T> {
                Ok(own_runtime()?.block_on(make()))
            })?;
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn own_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime the call ran on, and whether that was the caller's thread.
    fn where_it_ran() -> (Option<tokio::runtime::Id>, bool) {
        let caller = std::thread::current().id();
        block_on(|| async move {
            tokio::task::yield_now().await;
            (
                tokio::runtime::Handle::try_current().ok().map(|h| h.id()),
                std::thread::current().id() == caller,
            )
        })
        .unwrap()
    }

    #[test]
    fn without_a_runtime_it_runs_on_the_callers_thread() {
        let (runtime, here) = where_it_ran();
        assert!(runtime.is_some());
        assert!(here);
    }

    #[test]
    fn inside_a_current_thread_runtime_it_neither_panics_nor_deadlocks() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outer_id = outer.handle().id();
        let (runtime, here) = outer.block_on(async { where_it_ran() });
        assert_ne!(runtime, Some(outer_id), "ran on the caller's runtime");
        assert!(!here);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn from_spawn_blocking_and_from_a_task_alike() {
        let outer_id = tokio::runtime::Handle::current().id();
        let (runtime, _) = tokio::task::spawn_blocking(where_it_ran).await.unwrap();
        assert_ne!(runtime, Some(outer_id));
        let (runtime, _) = tokio::spawn(async { where_it_ran() }).await.unwrap();
        assert_ne!(runtime, Some(outer_id));
    }

    #[test]
    fn a_panic_in_the_call_reaches_the_caller() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let caught = std::panic::catch_unwind(|| {
            outer.block_on(async {
                block_on(|| async { panic!("inside the call") }).unwrap();
            })
        });
        assert!(caught.is_err());
    }
}
