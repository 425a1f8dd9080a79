//! Where guests run: an [`Executor`] of its own (dedicated, lower-priority threads, so guest code
//! never occupies the threads that serve the messenger) behind an admission queue that bounds
//! how many invocations run at once, in total, per app and per owner (the developer), queues a
//! bounded number more, dispatches the queue round-robin across apps, and sheds the rest at once
//! as [`ErrorKind::Busy`](crate::ErrorKind::Busy) instead of letting it wait without end.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// How guest execution is isolated and admitted. `RuntimeConfig::executor = None` runs guests on
/// the caller's own async threads with no admission queue (benchmarks, the local simulator).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorConfig {
    /// Threads that run guest code. Default: half the cores (at least one), leaving the rest to
    /// the messenger's API and writer.
    pub threads: usize,
    /// Nice value of the guest threads (0 to 19): higher yields the CPU to the messenger's
    /// threads whenever both want it. Default 10.
    pub nice: i32,
    /// Run the guest threads in Linux's `SCHED_IDLE` class: they get a core only when no
    /// ordinary thread wants it, so chat never waits for them (see BENCHMARKS.md, "Hostile
    /// load"). The price: while ordinary work saturates every core, guests do not run at all
    /// and their invocations end as timeouts (by the deadline plus slack: the caller's
    /// watchdog). `minihost serve` turns it on (`--guest-priority idle`); the default here is
    /// off (only `nice`, which leaves guests a small share under any load), for tools, the
    /// simulator and tests that share a busy machine.
    pub idle_class: bool,
    /// Invocations running at once, over all apps. Default: 2 per guest thread (guests sharing a
    /// thread take turns by epoch tick, so each more per thread can add a tick to how late a
    /// deadline is noticed).
    pub max_running: usize,
    /// Invocations of one app running at once. Default: half of `max_running`.
    pub max_running_per_app: usize,
    /// Invocations of one owner's apps running at once. Default: half of `max_running`, so
    /// one developer can never take every slot.
    pub max_running_per_owner: usize,
    /// Invocations waiting for a slot, over all apps; more are refused as busy. Default 256.
    pub max_queued: usize,
    /// Invocations of one app waiting for a slot. Default 16.
    pub max_queued_per_app: usize,
    /// Invocations of one owner's apps waiting for a slot. Default 32.
    pub max_queued_per_owner: usize,
    /// Longest wait for a slot; an invocation still queued then is refused as busy. Its own
    /// deadline starts when it gets a slot. Default 2 s.
    pub max_queue_wait: Duration,
    /// The fast lane: one more guest thread, at the messenger's own priority, where every
    /// invocation starts while the lane has time left; one that runs longer than
    /// [`FastLane::slice`] moves to the low-priority threads for the rest of its run. `None`:
    /// every invocation runs on the low-priority threads.
    pub fast_lane: Option<FastLane>,
}

/// How much of a core short invocations may take at the messenger's own priority.
///
/// On a saturated machine the low-priority guest threads get almost no CPU (that is their
/// point: a looping app cannot slow chat down), so even an app that answers in 0.1 ms waited
/// for a core and its users' commands were refused as `busy` (BENCHMARKS.md, "App commands off
/// the read pool, and a fast lane for short invocations"). The fast lane gives such invocations
/// an ordinary thread, bounded twice: each invocation keeps it for at most `slice` of running
/// time (the wall time of its polls there), and the lane as a whole spends
/// at most `share` of one core (a token bucket holding a tenth of a second of it); while the
/// lane's time is spent, invocations start on the low-priority threads as before. A storm of
/// looping apps therefore costs chat at most `share` of a core.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FastLane {
    /// Share of one core the lane may use, 0 to 1. Default 0.25.
    pub share: f64,
    /// Running time one invocation may spend on the lane. Default 5 ms.
    pub slice: Duration,
}

impl Default for FastLane {
    fn default() -> Self {
        FastLane {
            share: 0.25,
            slice: Duration::from_millis(5),
        }
    }
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores / 2).max(1);
        let max_running = threads * 2;
        ExecutorConfig {
            threads,
            nice: 10,
            idle_class: false,
            max_running,
            max_running_per_app: (max_running / 2).max(1),
            max_running_per_owner: (max_running / 2).max(1),
            max_queued: 256,
            max_queued_per_app: 16,
            max_queued_per_owner: 32,
            max_queue_wait: Duration::from_secs(2),
            fast_lane: Some(FastLane::default()),
        }
    }
}

/// Why an invocation was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The app's queue is full.
    AppQueueFull,
    /// The owner's queues are full.
    OwnerQueueFull,
    /// The whole queue is full.
    QueueFull,
    /// It waited `max_queue_wait` without getting a slot.
    Waited,
    /// The executor is shutting down.
    Closed,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::AppQueueFull => "too many invocations of this app are waiting",
            Refused::OwnerQueueFull => "too many invocations of this developer's apps are waiting",
            Refused::QueueFull => "too many invocations are waiting",
            Refused::Waited => "no slot became free in time",
            Refused::Closed => "the runtime is shutting down",
        })
    }
}

/// The guest threads and the admission queue. Shared by a runtime's clones.
pub(crate) struct Executor {
    runtime: Option<tokio::runtime::Runtime>,
    /// The fast lane's thread and its clock, if it has one.
    fast: Option<(tokio::runtime::Runtime, Arc<LaneClock>, Duration)>,
    admission: Arc<Admission>,
}

impl Executor {
    pub(crate) fn new(config: ExecutorConfig) -> std::io::Result<Executor> {
        let nice = config.nice.clamp(0, 19);
        let idle_class = config.idle_class;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("minihost-guest")
            // Check timers between every two task polls: guest tasks run a whole epoch tick per
            // poll, and an outer deadline must not wait behind dozens of them.
            .event_interval(1)
            .enable_all()
            .on_thread_start(move || lower_priority(nice, idle_class))
            .build()?;
        let fast = match config.fast_lane {
            Some(lane) if lane.share > 0.0 => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("minihost-guest-fast")
                    .event_interval(1)
                    .enable_all()
                    .build()?;
                Some((rt, Arc::new(LaneClock::new(lane.share)), lane.slice))
            }
            _ => None,
        };
        Ok(Executor {
            runtime: Some(runtime),
            fast,
            admission: Arc::new(Admission::new(config)),
        })
    }

    /// Waits for admission, calls `admitted` (on the caller's thread), then runs `work` on the
    /// guest threads and returns its output. Dropping the returned future after admission
    /// leaves `work` running to its end (its slot is freed then).
    pub(crate) async fn run<F>(
        &self,
        app: &str,
        owner: Option<&str>,
        admitted: impl FnOnce(),
        work: F,
    ) -> Result<F::Output, Refused>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let ticket = self.admission.clone().admit(app, owner).await?;
        admitted();
        let Some(runtime) = &self.runtime else {
            return Err(Refused::Closed);
        };
        let work = async move {
            let out = work.await;
            drop(ticket);
            out
        };
        match &self.fast {
            Some((fast, clock, slice)) if clock.has_time() => {
                let lane = Lane::Fast {
                    work: Box::pin(work),
                    ran: Duration::ZERO,
                    clock: clock.clone(),
                    slice: *slice,
                    slow: runtime.handle().clone(),
                };
                match fast.spawn(lane).await {
                    Ok(Ok(out)) => Ok(out),
                    _ => Err(Refused::Closed),
                }
            }
            _ => runtime.spawn(work).await.map_err(|_| Refused::Closed),
        }
    }

    /// What is running and waiting now.
    pub(crate) fn load(&self) -> ExecutorLoad {
        self.admission.load()
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime: let it wind down.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        if let Some((rt, _, _)) = self.fast.take() {
            rt.shutdown_background();
        }
    }
}

/// The fast lane's running time: a token bucket of CPU time refilled at `share` of one core,
/// holding at most a tenth of a second of it.
struct LaneClock {
    share: f64,
    /// Seconds of running time left, and when it was last refilled.
    left: Mutex<(f64, std::time::Instant)>,
}

impl LaneClock {
    fn new(share: f64) -> LaneClock {
        let share = share.clamp(0.0, 1.0);
        LaneClock {
            share,
            left: Mutex::new((share * BUCKET_SECS, std::time::Instant::now())),
        }
    }

    fn refill(&self, left: &mut (f64, std::time::Instant)) {
        let now = std::time::Instant::now();
        let gained = now.duration_since(left.1).as_secs_f64() * self.share;
        left.0 = (left.0 + gained).min(self.share * BUCKET_SECS);
        left.1 = now;
    }

    /// Whether the lane has running time left.
    fn has_time(&self) -> bool {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut left);
        left.0 > 0.0
    }

    /// Takes `ran` off the lane's time.
    fn spend(&self, ran: Duration) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut left);
        left.0 -= ran.as_secs_f64();
    }
}

/// Seconds of the fast lane's share its bucket holds (a burst of at most this much).
const BUCKET_SECS: f64 = 0.1;

type BoxedWork<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

/// An invocation on the fast lane: polled there, timing each poll, until it ends, runs past
/// its slice, or the lane's time runs out; then it moves to the low-priority threads (a future
/// is a value: it goes on where it stopped).
enum Lane<T: Send + 'static> {
    Fast {
        work: BoxedWork<T>,
        ran: Duration,
        clock: Arc<LaneClock>,
        slice: Duration,
        slow: tokio::runtime::Handle,
    },
    Moved(tokio::task::JoinHandle<T>),
    Gone,
}

impl<T: Send + 'static> Future for Lane<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = &mut *self;
        if let Lane::Fast {
            work,
            ran,
            clock,
            slice,
            ..
        } = this
        {
            let start = std::time::Instant::now();
            let polled = work.as_mut().poll(cx);
            let took = start.elapsed();
            *ran += took;
            clock.spend(took);
            if let Poll::Ready(out) = polled {
                *this = Lane::Gone;
                return Poll::Ready(Ok(out));
            }
            if *ran < *slice && clock.has_time() {
                return Poll::Pending;
            }
            if let Lane::Fast { work, slow, .. } = std::mem::replace(this, Lane::Gone) {
                *this = Lane::Moved(slow.spawn(work));
            }
        }
        match this {
            Lane::Moved(handle) => std::pin::Pin::new(handle).poll(cx),
            // Polled after it finished: a bug of the caller, answered as a cancelled task would be.
            _ => Poll::Pending,
        }
    }
}

/// Lowers the calling thread's scheduling priority (Linux nice values are per thread).
fn lower_priority(nice: i32, idle_class: bool) {
    if nice > 0
        && let Err(e) = rustix::process::setpriority_process(None, nice)
    {
        tracing::debug!(error = %e, "could not lower the guest thread's priority");
    }
    if idle_class {
        idle_policy();
    }
}

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs only when no ordinary thread
/// wants the core, and the scheduler counts a core running only such threads as idle when it
/// places a waking thread, so the messenger's threads take a guest's core at once instead of
/// queueing behind each other on the other one.
#[cfg(target_os = "linux")]
fn idle_policy() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler with pid 0 changes only the calling thread; `param` is a
    // valid sched_param for the lifetime of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "could not put the guest thread in SCHED_IDLE"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn idle_policy() {}

/// Running and waiting invocations, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecutorLoad {
    /// Invocations holding a slot.
    pub running: usize,
    /// Invocations waiting for one.
    pub queued: usize,
}

struct Admission {
    config: ExecutorConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: usize,
    running_per_app: HashMap<String, usize>,
    running_per_owner: HashMap<String, usize>,
    queued: usize,
    queued_per_owner: HashMap<String, usize>,
    /// Waiters per app, oldest first.
    queues: HashMap<String, VecDeque<Waiter>>,
    /// Apps with waiters, in round-robin order.
    order: VecDeque<String>,
    next_id: u64,
}

struct Waiter {
    id: u64,
    owner: Option<String>,
    wake: oneshot::Sender<()>,
}

/// A held slot; dropping it frees the slot and admits the next waiter.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    app: String,
    owner: Option<String>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(&self.app, self.owner.as_deref());
    }
}

fn bump(map: &mut HashMap<String, usize>, key: &str) {
    *map.entry(key.to_owned()).or_insert(0) += 1;
}

fn drop_one(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Admission {
    fn new(config: ExecutorConfig) -> Admission {
        Admission {
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load(&self) -> ExecutorLoad {
        let s = self.lock();
        ExecutorLoad {
            running: s.running,
            queued: s.queued,
        }
    }

    /// Whether an invocation of `app` (of `owner`) may take a slot now.
    fn fits(&self, s: &State, app: &str, owner: Option<&str>) -> bool {
        let c = &self.config;
        s.running < c.max_running
            && s.running_per_app.get(app).copied().unwrap_or(0) < c.max_running_per_app
            && owner.is_none_or(|o| {
                s.running_per_owner.get(o).copied().unwrap_or(0) < c.max_running_per_owner
            })
    }

    fn take_slot(s: &mut State, app: &str, owner: Option<&str>) {
        s.running += 1;
        bump(&mut s.running_per_app, app);
        if let Some(o) = owner {
            bump(&mut s.running_per_owner, o);
        }
    }

    async fn admit(self: Arc<Self>, app: &str, owner: Option<&str>) -> Result<Ticket, Refused> {
        let ticket = || Ticket {
            admission: self.clone(),
            app: app.to_owned(),
            owner: owner.map(str::to_owned),
        };
        let (id, wake) = {
            let mut s = self.lock();
            let nobody_waiting = !s.queues.contains_key(app);
            if nobody_waiting && self.fits(&s, app, owner) {
                Self::take_slot(&mut s, app, owner);
                return Ok(ticket());
            }
            let c = &self.config;
            if s.queued >= c.max_queued {
                return Err(Refused::QueueFull);
            }
            if s.queues.get(app).map_or(0, VecDeque::len) >= c.max_queued_per_app {
                return Err(Refused::AppQueueFull);
            }
            if let Some(o) = owner
                && s.queued_per_owner.get(o).copied().unwrap_or(0) >= c.max_queued_per_owner
            {
                return Err(Refused::OwnerQueueFull);
            }
            let id = s.next_id;
            s.next_id += 1;
            let (tx, rx) = oneshot::channel();
            s.queued += 1;
            if let Some(o) = owner {
                bump(&mut s.queued_per_owner, o);
            }
            if nobody_waiting {
                s.order.push_back(app.to_owned());
            }
            s.queues
                .entry(app.to_owned())
                .or_default()
                .push_back(Waiter {
                    id,
                    owner: owner.map(str::to_owned),
                    wake: tx,
                });
            (id, rx)
        };
        match tokio::time::timeout(self.config.max_queue_wait, wake).await {
            // The dispatcher gave this waiter a slot (already counted as running).
            Ok(Ok(())) => Ok(ticket()),
            Ok(Err(_)) => Err(Refused::Closed),
            Err(_elapsed) => {
                let mut s = self.lock();
                if self.remove_waiter(&mut s, app, id) {
                    Err(Refused::Waited)
                } else {
                    // Dispatched just as the wait ended: the slot is ours.
                    Ok(ticket())
                }
            }
        }
    }

    /// Removes a waiter that gave up; false if the dispatcher already took it.
    fn remove_waiter(&self, s: &mut State, app: &str, id: u64) -> bool {
        let Some(queue) = s.queues.get_mut(app) else {
            return false;
        };
        let Some(pos) = queue.iter().position(|w| w.id == id) else {
            return false;
        };
        let waiter = queue.remove(pos);
        let empty = queue.is_empty();
        if empty {
            s.queues.remove(app);
            s.order.retain(|a| a != app);
        }
        s.queued -= 1;
        if let Some(o) = waiter.as_ref().and_then(|w| w.owner.as_deref()) {
            drop_one(&mut s.queued_per_owner, o);
        }
        true
    }

    fn release(&self, app: &str, owner: Option<&str>) {
        let mut s = self.lock();
        s.running = s.running.saturating_sub(1);
        drop_one(&mut s.running_per_app, app);
        if let Some(o) = owner {
            drop_one(&mut s.running_per_owner, o);
        }
        self.dispatch(&mut s);
    }

    /// Gives free slots to waiters, one app at a time in round-robin order, skipping apps (and
    /// owners) at their running bound.
    fn dispatch(&self, s: &mut State) {
        let mut skipped = 0;
        while s.running < self.config.max_running && skipped < s.order.len() {
            let Some(app) = s.order.pop_front() else {
                return;
            };
            let owner = s
                .queues
                .get(&app)
                .and_then(|q| q.front())
                .and_then(|w| w.owner.clone());
            if !self.fits(s, &app, owner.as_deref()) {
                s.order.push_back(app);
                skipped += 1;
                continue;
            }
            let Some(queue) = s.queues.get_mut(&app) else {
                continue;
            };
            let Some(waiter) = queue.pop_front() else {
                s.queues.remove(&app);
                continue;
            };
            let empty = queue.is_empty();
            if empty {
                s.queues.remove(&app);
            } else {
                s.order.push_back(app.clone());
            }
            s.queued -= 1;
            if let Some(o) = &waiter.owner {
                drop_one(&mut s.queued_per_owner, o);
            }
            if waiter.wake.send(()).is_ok() {
                Self::take_slot(s, &app, waiter.owner.as_deref());
                skipped = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_running: usize) -> ExecutorConfig {
        ExecutorConfig {
            threads: 1,
            nice: 0,
            idle_class: false,
            max_running,
            max_running_per_app: max_running,
            max_running_per_owner: max_running,
            max_queued: 4,
            max_queued_per_app: 2,
            max_queued_per_owner: 3,
            max_queue_wait: Duration::from_secs(30),
            fast_lane: None,
        }
    }

    #[tokio::test]
    async fn bounds_queues_and_sheds_the_rest() {
        let a = Arc::new(Admission::new(config(1)));
        let first = a.clone().admit("x", Some("dev")).await.unwrap();
        let q1 = tokio::spawn(a.clone().admit_owned("x", Some("dev")));
        let q2 = tokio::spawn(a.clone().admit_owned("x", Some("dev")));
        tokio::task::yield_now().await;
        while a.load().queued < 2 {
            tokio::task::yield_now().await;
        }
        // The app's queue is full, then the owner's.
        assert_eq!(
            a.clone().admit("x", Some("dev")).await.err(),
            Some(Refused::AppQueueFull)
        );
        let q3 = tokio::spawn(a.clone().admit_owned("y", Some("dev")));
        while a.load().queued < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            a.clone().admit("z", Some("dev")).await.err(),
            Some(Refused::OwnerQueueFull)
        );
        let q4 = tokio::spawn(a.clone().admit_owned("z", Some("other")));
        while a.load().queued < 4 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            a.clone().admit("w", None).await.err(),
            Some(Refused::QueueFull)
        );
        assert_eq!(
            a.load(),
            ExecutorLoad {
                running: 1,
                queued: 4
            }
        );
        // Slots go round-robin across apps: x, then y, then z, then x again.
        drop(first);
        let t1 = q1.await.unwrap().unwrap();
        drop(t1);
        let t3 = q3.await.unwrap().unwrap();
        assert_eq!(
            a.load(),
            ExecutorLoad {
                running: 1,
                queued: 2
            }
        );
        drop(t3);
        let t4 = q4.await.unwrap().unwrap();
        drop(t4);
        let t2 = q2.await.unwrap().unwrap();
        drop(t2);
        assert_eq!(a.load(), ExecutorLoad::default());
    }

    #[tokio::test]
    async fn one_owner_cannot_take_every_slot() {
        let mut c = config(2);
        c.max_running_per_owner = 1;
        let a = Arc::new(Admission::new(c));
        let held = a.clone().admit("loop-1", Some("mallory")).await.unwrap();
        let waiting = tokio::spawn(a.clone().admit_owned("loop-2", Some("mallory")));
        while a.load().queued < 1 {
            tokio::task::yield_now().await;
        }
        // Another developer's app runs at once, beside mallory's.
        let fair = a.clone().admit("shop", Some("alice")).await.unwrap();
        assert_eq!(
            a.load(),
            ExecutorLoad {
                running: 2,
                queued: 1
            }
        );
        drop(fair);
        // The free slot is not mallory's to take while her other app runs.
        assert_eq!(
            a.load(),
            ExecutorLoad {
                running: 1,
                queued: 1
            }
        );
        drop(held);
        let second = waiting.await.unwrap().unwrap();
        assert_eq!(
            a.load(),
            ExecutorLoad {
                running: 1,
                queued: 0
            }
        );
        drop(second);
    }

    #[tokio::test]
    async fn a_waiter_gives_up_after_the_queue_wait() {
        let mut c = config(1);
        c.max_queue_wait = Duration::from_millis(50);
        let a = Arc::new(Admission::new(c));
        let held = a.clone().admit("x", None).await.unwrap();
        assert_eq!(
            a.clone().admit("x", None).await.err(),
            Some(Refused::Waited)
        );
        assert_eq!(
            a.load(),
            ExecutorLoad {
                running: 1,
                queued: 0
            }
        );
        drop(held);
        assert_eq!(a.load(), ExecutorLoad::default());
    }

    /// Spins `ms` milliseconds on the thread (a guest's running time, not a sleep).
    fn spin(ms: u64) {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(ms) {
            std::hint::spin_loop();
        }
    }

    /// Work that runs in `steps` polls of `ms` each and names the thread of every poll.
    async fn steps(steps: usize, ms: u64) -> Vec<String> {
        let mut threads = Vec::new();
        for _ in 0..steps {
            spin(ms);
            threads.push(std::thread::current().name().unwrap_or("").to_owned());
            tokio::task::yield_now().await;
        }
        threads
    }

    fn with_lane(share: f64, slice_ms: u64) -> Executor {
        let mut c = config(2);
        c.fast_lane = Some(FastLane {
            share,
            slice: Duration::from_millis(slice_ms),
        });
        Executor::new(c).unwrap()
    }

    #[tokio::test]
    async fn a_short_invocation_runs_on_the_fast_lane_and_a_long_one_moves_off_it() {
        let ex = with_lane(1.0, 5);
        let short = ex.run("a", None, || {}, steps(1, 1)).await.unwrap();
        assert_eq!(short, ["minihost-guest-fast"]);
        // Past its 5 ms slice it goes on, where it stopped, on the low-priority threads.
        let long = ex.run("a", None, || {}, steps(6, 2)).await.unwrap();
        assert_eq!(long.len(), 6);
        assert_eq!(long[0], "minihost-guest-fast");
        assert_eq!(long[5], "minihost-guest", "{long:?}");
        assert_eq!(ex.load(), ExecutorLoad::default(), "slots freed");
    }

    #[tokio::test]
    async fn a_spent_lane_sends_new_invocations_to_the_low_priority_threads() {
        // A share of 0.001 holds 0.1 ms: one 3 ms poll spends it for ~3 s.
        let ex = with_lane(0.001, 50);
        let first = ex.run("a", None, || {}, steps(1, 3)).await.unwrap();
        assert_eq!(first, ["minihost-guest-fast"]);
        let next = ex.run("b", None, || {}, steps(1, 1)).await.unwrap();
        assert_eq!(next, ["minihost-guest"]);
        let without = Executor::new(config(2)).unwrap();
        let none = without.run("a", None, || {}, steps(1, 1)).await.unwrap();
        assert_eq!(none, ["minihost-guest"], "no lane configured");
    }

    impl Admission {
        async fn admit_owned(
            self: Arc<Self>,
            app: &'static str,
            owner: Option<&'static str>,
        ) -> Result<Ticket, Refused> {
            self.admit(app, owner).await
        }
    }
}
