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
    pub(crate) fn start(
        target: &RedisTarget,
        retry: RetryPolicy,
        operation: &'static str,
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
            let _ = w.join();
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
            Ok(()) => {
                *unread = Some(batch);
                Ok(())
            }
            Err(failure) => self.resend(unread.take().into_iter().chain([batch]), failure),
        }
    }

    /// Checks the replies to the last batch.
    fn drain(&mut self, last: PackedBatch) -> Result<()> {
        match self.check(&last) {
            Ok(()) => Ok(()),
            Err(failure) => self.resend([last].into_iter(), failure),
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
            self.write_with_retries(&batch)?;
        }
        Ok(())
    }

    fn send_then_check(
        &mut self,
        batch: &PackedBatch,
        unread: Option<&PackedBatch>,
    ) -> Result<(), Failure> {
        if self.con.is_none() {
            self.con = Some(self.target.connect().map_err(|e| (e, None))?);
        }
        let con = self.con.as_mut().expect("connected above");
        con.send_packed_command(batch.bytes())
            .map_err(|e| (e, None))?;
        unread.map_or(Ok(()), |prev| self.check(prev))
    }

    /// Reads one reply per command of `batch`: each must be OK.
    fn check(&mut self, batch: &PackedBatch) -> Result<(), Failure> {
        let Some(con) = self.con.as_mut() else {
            let e = redis::RedisError::from((redis::ErrorKind::Io, "not connected"));
            return Err((e, None));
        };
        for i in 0..batch.len() {
            let reply = con.recv_response().map_err(|e| (e, None))?;
            check_reply(reply).map_err(|e| (e, Some(batch.key(i))))?;
        }
        Ok(())
    }

    /// SET is idempotent, so a batch whose replies were lost is simply sent again.
    fn write_with_retries(&mut self, batch: &PackedBatch) -> Result<()> {
        let retry = self.retry;
        let shared = self.shared.clone();
        let outcome = retry.run(
            || {
                let sent = self
                    .send_then_check(batch, None)
                    .and_then(|()| self.check(batch));
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
fn check_reply(reply: Reply) -> Result<(), redis::RedisError> {
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
