//! Group commit without a thread of our own: concurrent writers queue their
//! work, the first one to find nobody committing becomes the leader, runs
//! everything queued in one transaction (one disk flush for the whole group)
//! and hands each waiter its own result. With one caller this is a plain
//! transaction per write; with eight it amortises the flush over the group.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, ErrorKind, Result};

type Output = Box<dyn Any + Send>;

/// The work of one job.
pub type Work<C> = Box<dyn FnOnce(&mut C) -> Result<Output> + Send>;

/// One queued write: runs against the backend's connection `C`.
pub struct Job<C> {
    /// Whether it must be on disk before its caller returns.
    pub durable: bool,
    /// The work, run inside the group's transaction.
    pub run: Work<C>,
}

/// Runs a batch of jobs in one transaction and returns one result per job.
pub trait Batch<C> {
    /// Runs `jobs` (in order) on `conn`; a failed job must not affect the others.
    fn run_batch(conn: &mut C, jobs: Vec<Job<C>>) -> Vec<Result<Output>>;
}

struct Queue<C> {
    next_ticket: u64,
    waiting: Vec<(u64, Job<C>)>,
    done: HashMap<u64, Result<Output>>,
    leader: bool,
    /// Callers asleep on `wake` (a lone caller skips the wake-up system call).
    sleepers: usize,
}

/// The queue and the leader protocol for a backend connection `C`.
pub struct GroupCommit<C> {
    queue: Mutex<Queue<C>>,
    wake: Condvar,
    /// Largest number of jobs one transaction takes.
    max_batch: usize,
}

impl<C> std::fmt::Debug for GroupCommit<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

fn poisoned() -> Error {
    Error::new(
        ErrorKind::Internal,
        "store: write queue lock poisoned (a thread panicked while writing)",
    )
}

impl<C> GroupCommit<C> {
    /// An empty queue; each transaction takes at most `max_batch` jobs.
    pub fn new(max_batch: usize) -> Self {
        GroupCommit {
            queue: Mutex::new(Queue {
                next_ticket: 0,
                waiting: Vec::new(),
                done: HashMap::new(),
                leader: false,
                sleepers: 0,
            }),
            wake: Condvar::new(),
            max_batch: max_batch.max(1),
        }
    }

    /// Queues `run` and returns its result once the transaction that took it
    /// has committed. `conn` is locked only by the leader, for the batch.
    pub fn submit<R, B>(
        &self,
        conn: &Mutex<C>,
        durable: bool,
        run: impl FnOnce(&mut C) -> Result<R> + Send + 'static,
    ) -> Result<R>
    where
        R: Send + 'static,
        B: Batch<C>,
    {
        let job = Job {
            durable,
            run: Box::new(move |c: &mut C| run(c).map(|r| Box::new(r) as Output)),
        };
        let mut q = self.queue.lock().map_err(|_| poisoned())?;
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push((ticket, job));
        loop {
            if let Some(result) = q.done.remove(&ticket) {
                return result.and_then(|out| {
                    out.downcast::<R>()
                        .map(|b| *b)
                        .map_err(|_| Error::new(ErrorKind::Internal, "store: write result of an unexpected type"))
                });
            }
            if q.leader {
                q.sleepers += 1;
                q = self.wake.wait(q).map_err(|_| poisoned())?;
                q.sleepers -= 1;
                continue;
            }
            q.leader = true;
            let take = q.waiting.len().min(self.max_batch);
            let batch: Vec<(u64, Job<C>)> = q.waiting.drain(..take).collect();
            drop(q);
            let results = Self::run_as_leader::<B>(conn, batch);
            q = self.queue.lock().map_err(|_| poisoned())?;
            q.done.extend(results);
            q.leader = false;
            if q.sleepers > 0 {
                self.wake.notify_all();
            }
        }
    }

    fn run_as_leader<B: Batch<C>>(conn: &Mutex<C>, batch: Vec<(u64, Job<C>)>) -> Vec<(u64, Result<Output>)> {
        let (tickets, jobs): (Vec<u64>, Vec<Job<C>>) = batch.into_iter().unzip();
        let results = match conn.lock() {
            Ok(mut c) => B::run_batch(&mut c, jobs),
            Err(_) => jobs
                .iter()
                .map(|_| {
                    Err(Error::new(
                        ErrorKind::Internal,
                        "store: connection lock poisoned (a thread panicked while using the store)",
                    ))
                })
                .collect(),
        };
        tickets.into_iter().zip(results).collect()
    }
}

/// Locks `m`, mapping poison to an internal error naming `op`.
pub fn lock<'a, T>(m: &'a Mutex<T>, op: &str) -> Result<MutexGuard<'a, T>> {
    m.lock().map_err(|_| {
        Error::new(
            ErrorKind::Internal,
            format!("store: {op}: connection lock poisoned (a thread panicked while using the store)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A fake backend: counts transactions and the jobs in each.
    #[derive(Default)]
    struct Counter {
        transactions: usize,
        jobs: usize,
        durable_transactions: usize,
    }

    struct CountingBatch;
    impl Batch<Counter> for CountingBatch {
        fn run_batch(c: &mut Counter, jobs: Vec<Job<Counter>>) -> Vec<Result<Output>> {
            c.transactions += 1;
            if jobs.iter().any(|j| j.durable) {
                c.durable_transactions += 1;
            }
            // Stand-in for a disk flush, so concurrent writers pile up behind the leader.
            std::thread::sleep(std::time::Duration::from_millis(2));
            jobs.into_iter()
                .map(|j| {
                    c.jobs += 1;
                    (j.run)(c)
                })
                .collect()
        }
    }

    #[test]
    fn each_writer_gets_its_own_result_and_groups_share_transactions() {
        let conn = Arc::new(Mutex::new(Counter::default()));
        let group = Arc::new(GroupCommit::new(64));
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let (conn, group) = (conn.clone(), group.clone());
                s.spawn(move || {
                    for i in 0..25u64 {
                        let got = group
                            .submit::<u64, CountingBatch>(&conn, true, move |_| Ok(t * 1000 + i))
                            .unwrap();
                        assert_eq!(got, t * 1000 + i);
                    }
                });
            }
        });
        let c = conn.lock().unwrap();
        assert_eq!(c.jobs, 200);
        assert!(
            c.transactions < 200,
            "8 concurrent writers must share transactions: {} for 200 jobs",
            c.transactions
        );
        assert_eq!(c.durable_transactions, c.transactions);
    }

    #[test]
    fn a_failing_job_fails_alone() {
        let conn = Mutex::new(Counter::default());
        let group = GroupCommit::new(8);
        let err = group
            .submit::<(), CountingBatch>(&conn, false, |_| Err(Error::new(ErrorKind::Internal, "boom")))
            .unwrap_err();
        assert_eq!(err.message(), "boom");
        assert_eq!(group.submit::<u8, CountingBatch>(&conn, false, |_| Ok(7)).unwrap(), 7);
    }
}
