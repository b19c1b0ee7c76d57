//! Running one of the library's async calls from synchronous code, whatever
//! thread that code runs on.
//!
//! Synchronous entry points (figment's `Provider::data`, config-rs's
//! `Source::collect`, `run_blocking`) are called from a plain `fn main` and
//! from inside `#[tokio::main]` alike.
//!
//! # A client's own runtime
//!
//! A [`VaultClient`](crate::VaultClient) used from synchronous code runs
//! those calls on a runtime of its own ([`ClientRuntime`]): a
//! current-thread runtime on a thread of its own (`vault-secret-runtime`),
//! started on the first synchronous call and stopped when the last clone of
//! the client is dropped. The transport keeps one HTTP client per runtime,
//! so every synchronous call of a client reuses the same connection pool
//! (and TLS sessions) instead of opening a connection per call. A plain
//! thread polls the call itself within the runtime's context while the
//! runtime's thread drives the I/O; from anywhere else the call runs as a
//! task there and the calling thread waits for its answer on a channel.
//! The runtime's thread never waits for a caller, so this works from a
//! plain thread, from an async task (whose thread is held for the call:
//! `.await` is better there) and from a `spawn_blocking` thread, and cannot
//! deadlock. The cache's
//! background refreshes started by synchronous reads run on it too, between
//! calls.
//!
//! # A runtime per call
//!
//! Without a client to run on (resolving the default client's settings, an
//! adapter's one-shot client), [`run`] starts a runtime for the call.
//! Tokio offers no public way to tell an async task from a `spawn_blocking`
//! thread: `Handle::try_current()` succeeds in both, `task::try_id()` is
//! `Some` in both (a blocking closure is polled as a task), and
//! `Handle::block_on` panics in the first ("Cannot start a runtime from
//! within a runtime") while it works in the second. So the rule does not
//! guess:
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

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, PoisonError, mpsc};

use futures_util::FutureExt;

use crate::error::Error;

/// The runtime a client's synchronous calls run on (see the module docs):
/// started on first use, stopped when dropped.
#[derive(Default)]
pub(crate) struct ClientRuntime {
    started: Mutex<Option<Started>>,
}

/// A running runtime thread.
struct Started {
    handle: tokio::runtime::Handle,
    /// Dropped to stop the thread: its runtime then ends, with the tasks
    /// still on it.
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// What a call run on the client's runtime came to: its output, or its panic.
type Outcome<T> = Result<T, Box<dyn Any + Send>>;

impl ClientRuntime {
    /// Runs `call` to completion on this runtime, from synchronous code on
    /// any thread; a panic inside it resumes here. A runtime or thread that
    /// cannot be started is an error.
    pub(crate) fn run<T, F>(&self, call: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let handle = self.handle().map_err(cannot_start)?;
        let current = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
        if current == Some(handle.id()) {
            // A call from a task on this very runtime would wait for the
            // thread it holds: it gets a runtime of its own instead.
            return run(|| call);
        }
        if current.is_none() {
            // A plain thread polls the call itself, in the runtime's
            // context, while the runtime's thread drives its I/O and timers
            // (and the connection pool's tasks): no task to spawn, no
            // channel to wait on.
            return handle.block_on(call);
        }
        let (tx, rx) = mpsc::sync_channel::<Outcome<Result<T, Error>>>(1);
        handle.spawn(async move {
            let outcome = AssertUnwindSafe(call).catch_unwind().await;
            // The caller waits for it; it is gone only if it panicked.
            let _ = tx.send(outcome);
        });
        match rx.recv() {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // The task was dropped unfinished: only when the runtime stops,
            // which it does once the client is gone.
            Err(_) => Err(Error::config(
                "async runtime",
                "the client's runtime stopped before the call ended",
            )),
        }
    }

    /// The runtime's handle, starting its thread on first use.
    fn handle(&self) -> std::io::Result<tokio::runtime::Handle> {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(started) = started.as_ref() {
            return Ok(started.handle.clone());
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("vault-secret-runtime".into())
            .spawn(move || {
                let runtime = match own_runtime() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(runtime.handle().clone()));
                // Until the client is dropped; the runtime is dropped here,
                // outside any async context.
                let _ = runtime.block_on(stopped);
            })?;
        let handle = rx
            .recv()
            .map_err(|_| std::io::Error::other("the runtime thread ended at its start"))??;
        *started = Some(Started {
            handle: handle.clone(),
            _stop: stop,
        });
        Ok(handle)
    }

    /// Whether its thread runs (tests).
    #[cfg(test)]
    pub(crate) fn is_started(&self) -> bool {
        self.started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

fn cannot_start(e: std::io::Error) -> Error {
    Error::config(
        "async runtime",
        format!("cannot start a thread or runtime for a blocking call: {e}"),
    )
}

/// Runs a fallible call to completion from synchronous code (see the
/// module docs); a thread or runtime that cannot be started is an error.
pub(crate) fn run<T, F>(make: impl FnOnce() -> F + Send) -> Result<T, Error>
where
    T: Send,
    F: Future<Output = Result<T, Error>>,
{
    block_on(make).unwrap_or_else(|e| Err(cannot_start(e)))
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

    fn runtime_id() -> Result<Option<tokio::runtime::Id>, Error> {
        Ok(tokio::runtime::Handle::try_current().ok().map(|h| h.id()))
    }

    #[test]
    fn a_client_runtime_is_one_runtime_for_every_caller() {
        let rt = std::sync::Arc::new(ClientRuntime::default());
        assert!(!rt.is_started(), "started before its first use");
        let plain = rt.run(async { runtime_id() }).unwrap();
        assert!(plain.is_some());
        assert!(rt.is_started());
        // Inside an async task of a current-thread runtime (as
        // `#[tokio::main(flavor = "current_thread")]`), and from
        // `spawn_blocking`: the same runtime, not the caller's.
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let in_task = outer.block_on(async { rt.run(async { runtime_id() }) });
        let blocking = outer.block_on({
            let rt = rt.clone();
            async move {
                tokio::task::spawn_blocking(move || rt.run(async { runtime_id() }))
                    .await
                    .unwrap()
            }
        });
        assert_eq!(in_task.unwrap(), plain);
        assert_eq!(blocking.unwrap(), plain);
        assert_ne!(plain, Some(outer.handle().id()));
        // A call from a task on the client's runtime itself runs on one of
        // its own rather than wait for the thread it holds.
        let again = rt.clone();
        let nested = rt.run(async move { again.run(async { runtime_id() }) });
        let nested = nested.unwrap();
        assert!(nested.is_some() && nested != plain, "{nested:?}");
    }

    #[test]
    fn dropping_a_client_runtime_stops_it_and_its_tasks() {
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rt = ClientRuntime::default();
        let flag = Flag(dropped.clone());
        rt.run(async move {
            tokio::spawn(async move {
                let _flag = flag;
                std::future::pending::<()>().await;
            });
            Ok(())
        })
        .unwrap();
        assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
        drop(rt);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !dropped.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the runtime still runs"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn a_panic_on_a_client_runtime_reaches_the_caller() {
        let rt = ClientRuntime::default();
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            rt.run::<(), _>(async { panic!("inside the call") })
        }));
        assert!(caught.is_err());
        // The runtime still serves.
        assert!(rt.run(async { runtime_id() }).unwrap().is_some());
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
