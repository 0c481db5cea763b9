//! The pipelined writer: batches of `SET key value PXAT ms` over several connections, one
//! thread each, every reply checked, transient faults retried with the store's retry policy.
//! `finish` returns only once every write was acknowledged.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redis::Value as Reply;

use super::RedisTarget;
use super::explain::is_transient;
use crate::base::error::{Error, Result};
use crate::base::interrupt::interrupted;
use crate::base::retry::RetryPolicy;
use crate::online::{CommandSink, PackedBatch, WriteStats};

/// Where the commands a cluster node refused as not its own (MOVED, ASK, TRYAGAIN,
/// CLUSTERDOWN), or that were in flight when a node failed, go: to the nodes that own them now.
pub(crate) trait Reroute: Send + Sync {
    /// Delivers commands `which` of `batch` wherever they belong, every reply checked,
    /// following redirects and riding out a failover with the store's retry policy.
    fn deliver(&self, batch: &PackedBatch, which: &[usize], operation: &'static str) -> Result<()>;
}

/// Does this reply say that the command belongs elsewhere (or later) on a cluster?
pub(crate) fn is_redirect(e: &redis::RedisError) -> bool {
    matches!(e.code(), Some("MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN"))
}

/// Pipelines batches over `connections` parallel connections, one thread each.
pub(crate) struct PipelinedWriter {
    senders: Vec<SyncSender<PackedBatch>>,
    workers: Vec<JoinHandle<()>>,
    next: usize,
    shared: Arc<Shared>,
}

/// What the workers share with the writer.
#[derive(Default)]
struct Shared {
    failure: Mutex<Option<Error>>,
    failed: AtomicBool,
    retries: AtomicU64,
}

impl PipelinedWriter {
    /// `operation` names the writes in errors (`write` for a run's vectors, `retire`...).
    /// With `reroute` (a cluster node), refused and stranded commands go there.
    pub(crate) fn start(
        target: &RedisTarget,
        retry: RetryPolicy,
        operation: &'static str,
        reroute: Option<Arc<dyn Reroute>>,
    ) -> Result<PipelinedWriter> {
        let shared = Arc::new(Shared::default());
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..target.connections.max(1) {
            let con = target.connect_explained()?;
            let (tx, rx) = sync_channel::<PackedBatch>(2);
            let worker = Worker {
                target: target.clone(),
                retry,
                operation,
                con: Some(con),
                shared: shared.clone(),
                reroute: reroute.clone(),
            };
            workers.push(std::thread::spawn(move || worker.run(rx)));
            senders.push(tx);
        }
        Ok(PipelinedWriter {
            senders,
            workers,
            next: 0,
            shared,
        })
    }

    fn take_failure(&self) -> Error {
        self.shared
            .failure
            .lock()
            .unwrap()
            .take()
            .unwrap_or(Error::Interrupted)
    }
}

impl CommandSink for PipelinedWriter {
    fn send(&mut self, batch: PackedBatch) -> Result<()> {
        if self.shared.failed.load(Ordering::Relaxed) || interrupted() {
            return Err(self.take_failure());
        }
        let i = self.next % self.senders.len();
        self.next += 1;
        self.senders[i].send(batch).map_err(|_| self.take_failure())
    }

    fn finish(self: Box<Self>) -> Result<WriteStats> {
        let this = *self;
        drop(this.senders);
        for w in this.workers {
            // A worker that panicked acknowledged nothing it held: never a success.
            if w.join().is_err() {
                this.shared
                    .failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(Error::Interrupted);
            }
        }
        if let Some(e) = this.shared.failure.lock().unwrap().take() {
            return Err(e);
        }
        if interrupted() {
            return Err(Error::Interrupted);
        }
        Ok(WriteStats {
            retries: this.shared.retries.load(Ordering::Relaxed),
        })
    }
}

struct Worker {
    target: RedisTarget,
    retry: RetryPolicy,
    operation: &'static str,
    con: Option<redis::Connection>,
    shared: Arc<Shared>,
    reroute: Option<Arc<dyn Reroute>>,
}

type Failure = (redis::RedisError, Option<String>);

impl Worker {
    /// Each batch is sent before the replies to the previous one are read, so that Redis finds
    /// the next commands waiting when it finishes a batch (waiting for every reply before
    /// sending more left it idle between batches).
    fn run(mut self, rx: Receiver<PackedBatch>) {
        let mut unread: Option<PackedBatch> = None;
        for batch in rx {
            if self.shared.failed.load(Ordering::Relaxed) || interrupted() {
                return;
            }
            if let Err(e) = self.step(batch, &mut unread) {
                return self.fail(e);
            }
        }
        if let Some(last) = unread
            && let Err(e) = self.drain(last)
        {
            self.fail(e);
        }
    }

    fn fail(&self, e: Error) {
        self.shared.failure.lock().unwrap().get_or_insert(e);
        self.shared.failed.store(true, Ordering::Relaxed);
    }

    /// Sends `batch`, then checks the replies to `unread`, the batch sent before it; `batch`
    /// becomes the unread one.
    fn step(&mut self, batch: PackedBatch, unread: &mut Option<PackedBatch>) -> Result<()> {
        match self.send_then_check(&batch, unread.as_ref()) {
            Ok(redirected) => {
                if let Some(prev) = unread.as_ref() {
                    self.redirect(prev, &redirected)?;
                }
                *unread = Some(batch);
                Ok(())
            }
            Err(failure) => self.resend(unread.take().into_iter().chain([batch]), failure),
        }
    }

    /// Checks the replies to the last batch.
    fn drain(&mut self, last: PackedBatch) -> Result<()> {
        match self.check(&last) {
            Ok(redirected) => self.redirect(&last, &redirected),
            Err(failure) => self.resend([last].into_iter(), failure),
        }
    }

    /// Sends the commands of `batch` that this node refused to the nodes that own them.
    fn redirect(&self, batch: &PackedBatch, which: &[usize]) -> Result<()> {
        match &self.reroute {
            Some(reroute) if !which.is_empty() => {
                self.shared.retries.fetch_add(1, Ordering::Relaxed);
                reroute.deliver(batch, which, self.operation)
            }
            _ => Ok(()),
        }
    }

    /// After a transient failure, nothing is known of what landed: the batches in flight are
    /// sent again one by one, each with its own retries (SET is idempotent).
    fn resend(
        &mut self,
        batches: impl Iterator<Item = PackedBatch>,
        (e, key): Failure,
    ) -> Result<()> {
        if !is_transient(&e) {
            return Err(self.fatal(e, key, 1));
        }
        self.shared.retries.fetch_add(1, Ordering::Relaxed);
        self.con = None;
        for batch in batches {
            match &self.reroute {
                // On a cluster the node may be gone for good (failed over): the slot map says
                // where the batch's keys live now.
                Some(reroute) => {
                    let all: Vec<usize> = (0..batch.len()).collect();
                    reroute.deliver(&batch, &all, self.operation)?;
                }
                None => self.write_with_retries(&batch)?,
            }
        }
        Ok(())
    }

    /// Sends `batch`, then checks the replies to `unread`; returns the commands of `unread`
    /// to send elsewhere (see `check`).
    fn send_then_check(
        &mut self,
        batch: &PackedBatch,
        unread: Option<&PackedBatch>,
    ) -> Result<Vec<usize>, Failure> {
        if self.con.is_none() {
            self.con = Some(self.target.connect().map_err(|e| (e, None))?);
        }
        let con = self.con.as_mut().expect("connected above");
        con.send_packed_command(batch.bytes())
            .map_err(|e| (e, None))?;
        unread.map_or(Ok(Vec::new()), |prev| self.check(prev))
    }

    /// Reads one reply per command of `batch`: each must be OK. On a cluster, the commands
    /// refused as another node's come back, to be rerouted.
    fn check(&mut self, batch: &PackedBatch) -> Result<Vec<usize>, Failure> {
        let Some(con) = self.con.as_mut() else {
            let e = redis::RedisError::from((redis::ErrorKind::Io, "not connected"));
            return Err((e, None));
        };
        let mut redirected = Vec::new();
        for i in 0..batch.len() {
            let reply = con.recv_response().map_err(|e| (e, None))?;
            match check_reply(reply) {
                Ok(()) => {}
                Err(e) if self.reroute.is_some() && is_redirect(&e) => redirected.push(i),
                Err(e) => return Err((e, Some(batch.key(i)))),
            }
        }
        Ok(redirected)
    }

    /// SET is idempotent, so a batch whose replies were lost is simply sent again.
    fn write_with_retries(&mut self, batch: &PackedBatch) -> Result<()> {
        let retry = self.retry;
        let shared = self.shared.clone();
        let outcome = retry.run(
            || {
                let sent = self
                    .send_then_check(batch, None)
                    .and_then(|_| self.check(batch))
                    .map(drop);
                if sent.is_err() {
                    self.con = None;
                }
                sent
            },
            |(e, _)| is_transient(e) && !interrupted(),
            |_, _| {
                shared.retries.fetch_add(1, Ordering::Relaxed);
            },
        );
        match outcome {
            Ok(()) => Ok(()),
            Err(((e, key), attempts)) => Err(self.fatal(e, key, attempts)),
        }
    }

    fn fatal(&self, e: redis::RedisError, key: Option<String>, attempts: u32) -> Error {
        let mut failed = self.target.failed(self.operation);
        failed.key = key;
        failed.attempts = attempts;
        failed.error(e)
    }
}

/// A reply to SET (OK) or PEXPIREAT (an integer), or the error it is.
pub(crate) fn check_reply(reply: Reply) -> Result<(), redis::RedisError> {
    match reply {
        Reply::Okay | Reply::Int(_) => Ok(()),
        Reply::ServerError(e) => Err(e.into()),
        other => Err(redis::RedisError::from((
            redis::ErrorKind::Parse,
            "unexpected reply to a write",
            format!("{other:?}"),
        ))),
    }
}
