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
//! current-thread runtime with a thread of its own (`vault-secret-runtime`),
//! started on the first synchronous call and stopped when the last clone of
//! the client is dropped. The transport keeps one HTTP client per runtime,
//! so every synchronous call of a client reuses the same connection pool
//! (and TLS sessions) instead of opening a connection per call.
//!
//! A plain thread drives the runtime itself for the call (its I/O, timers
//! and tasks), as it would a runtime of its own, so no wake-up crosses
//! threads on the way; the runtime's thread steps aside meanwhile, and takes
//! the runtime back once no call has driven it for 10 ms, to drive the work
//! left in the background (the cache's refreshes, the connection pool's
//! tasks). From anywhere else (an async task, whose thread is held for the
//! call: `.await` is better there; a `spawn_blocking` thread) the call runs
//! as a task on the runtime's thread and the calling thread waits for its
//! answer on a channel. No caller waits for another to finish, so this
//! cannot deadlock.
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
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use crate::error::Error;

/// The runtime a client's synchronous calls run on (see the module docs):
/// started on first use, stopped when dropped.
#[derive(Default)]
pub(crate) struct ClientRuntime {
    started: Mutex<Option<Started>>,
}

/// A running runtime and its thread.
struct Started {
    // Declared (so dropped) before `_stop`: the runtime's own thread then
    // holds the last reference and drops the runtime there, outside any
    // async context, whatever thread drops the client.
    shared: Arc<Shared>,
    /// Dropped to stop the thread: its runtime then ends, with the tasks
    /// still on it.
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// What the runtime's thread and the callers share.
struct Shared {
    runtime: tokio::runtime::Runtime,
    turns: Turns,
}

/// Who drives the runtime: a plain thread inside a call drives it itself;
/// its own thread drives it only once no call has for [`IDLE`], or when a
/// call from an async context needs it. A run of synchronous calls so never
/// waits for the runtime to be handed over.
#[derive(Default)]
struct Turns {
    state: Mutex<TurnState>,
    /// Wakes the runtime's thread when a call from an async context needs it.
    wanted: Condvar,
    /// Wakes the runtime's thread, while it drives, to step aside for a caller.
    arrived: tokio::sync::Notify,
}

#[derive(Default)]
struct TurnState {
    /// Plain threads inside a call.
    callers: usize,
    /// When the last call ended.
    last_left: Option<Instant>,
    /// Whether the runtime's thread drives the runtime (or waits to).
    driving: bool,
    /// Whether a call from an async context waits for the runtime's thread.
    wanted: bool,
}

/// How long the runtime's thread leaves the runtime to callers after the
/// last call ended: background work (the cache's refreshes, the connection
/// pool) is driven by the calls meanwhile, and by the runtime's thread after.
const IDLE: Duration = Duration::from_millis(10);

/// A caller's turn at driving the runtime.
struct Turn<'a>(&'a Turns);

impl Turns {
    fn lock(&self) -> std::sync::MutexGuard<'_, TurnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A plain thread's turn: the runtime's thread, if it drives, steps aside.
    fn take(&self) -> Turn<'_> {
        let mut state = self.lock();
        state.callers += 1;
        if state.driving {
            // Stored as a permit if the runtime's thread is not waiting yet.
            self.arrived.notify_one();
        }
        Turn(self)
    }

    /// Wakes the runtime's thread to drive a task an async context spawned.
    fn want(&self) {
        self.lock().wanted = true;
        self.wanted.notify_one();
    }

    /// The runtime's thread: waits until the runtime is its to drive.
    fn wait_for_turn(&self) {
        let mut state = self.lock();
        loop {
            let idle = state.last_left.map_or(IDLE, |at| at.elapsed());
            if state.wanted || (state.callers == 0 && idle >= IDLE) {
                break;
            }
            let wait = if state.callers == 0 {
                IDLE - idle
            } else {
                IDLE
            };
            state = self
                .wanted
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.wanted = false;
        state.driving = true;
    }

    /// The runtime's thread has stepped aside.
    fn stepped_aside(&self) {
        self.lock().driving = false;
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.callers -= 1;
        state.last_left = Some(Instant::now());
    }
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
        let shared = self.shared().map_err(cannot_start)?;
        let handle = shared.runtime.handle();
        let current = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
        if current == Some(handle.id()) {
            // A call from a task on this very runtime would wait for the
            // thread it holds: it gets a runtime of its own instead.
            return run(|| call);
        }
        if current.is_none() {
            // A plain thread drives the runtime itself for the call (its
            // I/O, timers and the tasks on it), as a runtime of its own
            // would: the runtime's thread steps aside until the call ends,
            // so no wake-up crosses threads on the way.
            let _turn = shared.turns.take();
            return shared.runtime.block_on(call);
        }
        let (tx, rx) = mpsc::sync_channel::<Outcome<Result<T, Error>>>(1);
        handle.spawn(async move {
            let outcome = AssertUnwindSafe(call).catch_unwind().await;
            // The caller waits for it; it is gone only if it panicked.
            let _ = tx.send(outcome);
        });
        shared.turns.want();
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

    /// The runtime, starting its thread on first use.
    fn shared(&self) -> std::io::Result<Arc<Shared>> {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(started) = started.as_ref() {
            return Ok(started.shared.clone());
        }
        let shared = Arc::new(Shared {
            runtime: own_runtime()?,
            turns: Turns::default(),
        });
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let driver = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("vault-secret-runtime".into())
            .spawn(move || {
                // Drives the runtime between calls (the cache's background
                // refreshes, calls from async contexts) until the client is
                // dropped; the runtime is dropped here, outside any async
                // context.
                loop {
                    driver.turns.wait_for_turn();
                    let stop = driver.runtime.block_on(async {
                        let arrived = std::pin::pin!(driver.turns.arrived.notified());
                        matches!(
                            futures_util::future::select(&mut stopped, arrived).await,
                            futures_util::future::Either::Left(_)
                        )
                    });
                    driver.turns.stepped_aside();
                    if stop {
                        break;
                    }
                }
            });
        if let Err(e) = spawned {
            // The closure, and its reference, are gone: this is the last
            // one. A runtime must not be dropped inside an async context.
            if let Ok(shared) = Arc::try_unwrap(shared) {
                shared.runtime.shutdown_background();
            }
            return Err(e);
        }
        *started = Some(Started {
            shared: shared.clone(),
            _stop: stop,
        });
        Ok(shared)
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
    fn a_plain_thread_drives_the_call_itself_and_the_runtime_thread_the_rest() {
        let rt = ClientRuntime::default();
        let caller = std::thread::current().id();
        let ran_on = rt.run(async { Ok(std::thread::current().id()) }).unwrap();
        assert_eq!(
            ran_on, caller,
            "the call did not run on the caller's thread"
        );
        // A task the call leaves behind (a background refresh) still ends
        // with no further call: the runtime's thread drives it.
        let (tx, rx) = mpsc::channel();
        rt.run(async move {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = tx.send(std::thread::current().id());
            });
            Ok(())
        })
        .unwrap();
        let finished_on = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the background task was never driven");
        assert_ne!(finished_on, caller);
    }

    #[test]
    fn plain_threads_and_async_callers_at_once_all_finish() {
        let rt = std::sync::Arc::new(ClientRuntime::default());
        let call = || async {
            // Timers and a task of its own: what a read's I/O needs driven.
            tokio::time::sleep(Duration::from_millis(1)).await;
            tokio::spawn(async { 7 })
                .await
                .map_err(|_| Error::config("async runtime", "the task was dropped"))
        };
        let (tx, rx) = mpsc::channel();
        for i in 0..6 {
            let (rt, tx) = (rt.clone(), tx.clone());
            std::thread::spawn(move || {
                let mut sum = 0;
                for _ in 0..50 {
                    sum += if i % 2 == 0 {
                        // A plain thread.
                        rt.run(call()).unwrap()
                    } else {
                        // Inside a caller's own runtime (an async task).
                        let outer = own_runtime().unwrap();
                        outer.block_on(async { rt.run(call()) }).unwrap()
                    };
                }
                let _ = tx.send(sum);
            });
        }
        for _ in 0..6 {
            let sum = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("a caller never finished");
            assert_eq!(sum, 350);
        }
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
