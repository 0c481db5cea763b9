//! Writing vectors: a `CommandSink` takes batches of `SET key value PXAT ms` and must not report
//! success until every reply was acknowledged. Two sinks: the pipelined Redis writer (several
//! connections, retries transient faults) and a RESP file for `redis-cli --pipe`.

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, LazyLock, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use redis::Value as Reply;

use super::RedisTarget;
use crate::error::Error;

/// A batch of `SET key value PXAT expiry` commands, already serialized as RESP: the exact bytes
/// sent to Redis, and the exact bytes `--emit-resp` writes.
#[derive(Default)]
pub struct PackedBatch {
    bytes: Vec<u8>,
    /// (offset, length) of each command's key in `bytes`, to name a key a reply refuses.
    keys: Vec<(usize, usize)>,
    value_bytes: usize,
}

impl PackedBatch {
    /// Appends `SET {key_prefix}{entity} value PXAT pxat_ms`.
    pub fn push_set(&mut self, key_prefix: &str, entity: &str, value: &[u8], pxat_ms: i64) {
        let mut n = itoa::Buffer::new();
        let b = &mut self.bytes;
        b.extend_from_slice(b"*5\r\n$3\r\nSET\r\n$");
        b.extend_from_slice(n.format(key_prefix.len() + entity.len()).as_bytes());
        b.extend_from_slice(b"\r\n");
        self.keys.push((b.len(), key_prefix.len() + entity.len()));
        b.extend_from_slice(key_prefix.as_bytes());
        b.extend_from_slice(entity.as_bytes());
        b.extend_from_slice(b"\r\n$");
        b.extend_from_slice(n.format(value.len()).as_bytes());
        b.extend_from_slice(b"\r\n");
        b.extend_from_slice(value);
        self.value_bytes += value.len();
        b.extend_from_slice(b"\r\n$4\r\nPXAT\r\n$");
        let mut digits = itoa::Buffer::new();
        let ms = digits.format(pxat_ms);
        b.extend_from_slice(n.format(ms.len()).as_bytes());
        b.extend_from_slice(b"\r\n");
        b.extend_from_slice(ms.as_bytes());
        b.extend_from_slice(b"\r\n");
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Total size of the values (vectors) in the batch.
    pub fn value_bytes(&self) -> usize {
        self.value_bytes
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn key(&self, i: usize) -> String {
        let (at, len) = self.keys[i];
        String::from_utf8_lossy(&self.bytes[at..at + len]).into_owned()
    }
}

/// Where vectors go. `finish` returns only once every write was acknowledged.
pub trait CommandSink {
    fn send(&mut self, batch: PackedBatch) -> Result<(), Error>;
    fn finish(self: Box<Self>) -> Result<WriteStats, Error>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    pub commands: u64,
    pub retries: u64,
}

/// Set by the signal handler; writers stop between batches when it is up.
pub static INTERRUPTED: LazyLock<Arc<AtomicBool>> =
    LazyLock::new(|| Arc::new(AtomicBool::new(false)));

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Is this failure worth retrying (SPEC §5): connection trouble or a server that says "later".
pub fn is_transient(e: &redis::RedisError) -> bool {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        return true;
    }
    matches!(
        e.code(),
        Some("LOADING" | "TRYAGAIN" | "BUSY" | "MASTERDOWN" | "CLUSTERDOWN")
    )
}

const MAX_ATTEMPTS: u32 = 8;

/// Pipelines batches over `connections` parallel connections, one thread each.
pub struct PipelinedWriter {
    senders: Vec<SyncSender<PackedBatch>>,
    workers: Vec<JoinHandle<()>>,
    next: usize,
    failure: Arc<Mutex<Option<Error>>>,
    failed: Arc<AtomicBool>,
    commands: Arc<AtomicU64>,
    retries: Arc<AtomicU64>,
}

impl PipelinedWriter {
    pub fn start(target: &RedisTarget) -> Result<PipelinedWriter, Error> {
        let failure = Arc::new(Mutex::new(None));
        let failed = Arc::new(AtomicBool::new(false));
        let commands = Arc::new(AtomicU64::new(0));
        let retries = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..target.connections.max(1) {
            let con = target.connect_explained()?;
            let (tx, rx) = sync_channel::<PackedBatch>(2);
            let worker = Worker {
                target: target.clone(),
                con: Some(con),
                failure: failure.clone(),
                failed: failed.clone(),
                commands: commands.clone(),
                retries: retries.clone(),
            };
            workers.push(std::thread::spawn(move || worker.run(rx)));
            senders.push(tx);
        }
        Ok(PipelinedWriter {
            senders,
            workers,
            next: 0,
            failure,
            failed,
            commands,
            retries,
        })
    }

    fn take_failure(&self) -> Error {
        self.failure
            .lock()
            .unwrap()
            .take()
            .unwrap_or(Error::Interrupted)
    }
}

impl CommandSink for PipelinedWriter {
    fn send(&mut self, batch: PackedBatch) -> Result<(), Error> {
        if self.failed.load(Ordering::Relaxed) || interrupted() {
            return Err(self.take_failure());
        }
        let i = self.next % self.senders.len();
        self.next += 1;
        self.senders[i].send(batch).map_err(|_| self.take_failure())
    }

    fn finish(self: Box<Self>) -> Result<WriteStats, Error> {
        let this = *self;
        drop(this.senders);
        for w in this.workers {
            let _ = w.join();
        }
        if let Some(e) = this.failure.lock().unwrap().take() {
            return Err(e);
        }
        if interrupted() {
            return Err(Error::Interrupted);
        }
        Ok(WriteStats {
            commands: this.commands.load(Ordering::Relaxed),
            retries: this.retries.load(Ordering::Relaxed),
        })
    }
}

struct Worker {
    target: RedisTarget,
    con: Option<redis::Connection>,
    failure: Arc<Mutex<Option<Error>>>,
    failed: Arc<AtomicBool>,
    commands: Arc<AtomicU64>,
    retries: Arc<AtomicU64>,
}

type Failure = (redis::RedisError, Option<String>);

impl Worker {
    /// Each batch is sent before the replies to the previous one are read, so that Redis finds
    /// the next commands waiting when it finishes a batch (waiting for every reply before
    /// sending more left it idle between batches).
    fn run(mut self, rx: Receiver<PackedBatch>) {
        let mut unread: Option<PackedBatch> = None;
        for batch in rx {
            if self.failed.load(Ordering::Relaxed) || interrupted() {
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
        self.failure.lock().unwrap().get_or_insert(e);
        self.failed.store(true, Ordering::Relaxed);
    }

    fn done(&self, batch: &PackedBatch) {
        self.commands
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    /// Sends `batch`, then checks the replies to `unread`, the batch sent before it; `batch`
    /// becomes the unread one.
    fn step(&mut self, batch: PackedBatch, unread: &mut Option<PackedBatch>) -> Result<(), Error> {
        match self.send_then_check(&batch, unread.as_ref()) {
            Ok(()) => {
                if let Some(prev) = unread.replace(batch) {
                    self.done(&prev);
                }
                Ok(())
            }
            Err(failure) => self.resend(unread.take().into_iter().chain([batch]), failure),
        }
    }

    /// Checks the replies to the last batch.
    fn drain(&mut self, last: PackedBatch) -> Result<(), Error> {
        match self.check(&last) {
            Ok(()) => {
                self.done(&last);
                Ok(())
            }
            Err(failure) => self.resend([last].into_iter(), failure),
        }
    }

    /// After a transient failure, nothing is known of what landed: the batches in flight are
    /// sent again one by one, each with its own retries (SET is idempotent).
    fn resend(
        &mut self,
        batches: impl Iterator<Item = PackedBatch>,
        (e, key): Failure,
    ) -> Result<(), Error> {
        if !is_transient(&e) {
            return Err(fatal(&self.target, &e, key.as_deref(), 1));
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.con = None;
        for batch in batches {
            self.write_with_retries(&batch)?;
            self.done(&batch);
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
    fn write_with_retries(&mut self, batch: &PackedBatch) -> Result<(), Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(batch) {
                Ok(()) => return Ok(()),
                Err((e, _)) if is_transient(&e) && attempt < MAX_ATTEMPTS && !interrupted() => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    self.con = None;
                    std::thread::sleep(Duration::from_millis((25u64 << attempt).min(5_000)));
                }
                Err((e, key)) => return Err(fatal(&self.target, &e, key.as_deref(), attempt)),
            }
        }
    }

    /// One try: (re)connect if needed, send the batch, check every reply.
    fn attempt(&mut self, batch: &PackedBatch) -> Result<(), Failure> {
        self.send_then_check(batch, None)?;
        self.check(batch)
    }
}

/// A SET's reply: OK, or the error it is.
fn check_reply(reply: Reply) -> Result<(), redis::RedisError> {
    match reply {
        Reply::Okay => Ok(()),
        Reply::ServerError(e) => Err(e.into()),
        other => Err(redis::RedisError::from((
            redis::ErrorKind::Parse,
            "unexpected reply to SET",
            format!("{other:?}"),
        ))),
    }
}

fn fatal(target: &RedisTarget, e: &redis::RedisError, key: Option<&str>, attempts: u32) -> Error {
    let text = e.to_string();
    let what: Cow<'static, str> = if text.contains("OOM") {
        "Redis is out of memory (maxmemory reached with a noeviction policy); free memory or raise maxmemory, then rerun".into()
    } else if text.contains("NOAUTH") || text.contains("WRONGPASS") || text.contains("NOPERM") {
        "Redis refused the credentials, or its ACL does not allow this write".into()
    } else if text.contains("WRONGTYPE") {
        "a key fsctl writes already holds another type: is another tool using this key prefix?"
            .into()
    } else if e.is_timeout() {
        format!(
            "Redis did not answer within online_store.response_timeout ({} ms), even after retries",
            target.response_timeout.as_millis()
        )
        .into()
    } else if is_transient(e) {
        "Redis kept failing after retries".into()
    } else {
        "Redis refused a write".into()
    };
    let key = key.map(|k| format!(", key {k}")).unwrap_or_default();
    Error::Redis(format!(
        "{what}: {text} (server {}{key}, after {attempts} attempt{}); nothing was committed, rerun to complete",
        target.display(),
        if attempts == 1 { "" } else { "s" }
    ))
}

/// Writes the command stream as RESP, for `redis-cli --pipe`.
pub struct RespFile<W: Write> {
    out: W,
    commands: u64,
}

impl<W: Write> RespFile<W> {
    pub fn new(out: W) -> Self {
        RespFile { out, commands: 0 }
    }

    /// Writes one command in RESP (an array of bulk strings).
    pub fn command(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        write!(self.out, "*{}\r\n", args.len())?;
        for a in args {
            write!(self.out, "${}\r\n", a.len())?;
            self.out.write_all(a)?;
            self.out.write_all(b"\r\n")?;
        }
        self.commands += 1;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> CommandSink for RespFile<W> {
    fn send(&mut self, batch: PackedBatch) -> Result<(), Error> {
        self.out
            .write_all(batch.bytes())
            .map_err(|e| Error::Input(format!("--emit-resp: {e}")))?;
        self.commands += batch.len() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<WriteStats, Error> {
        self.out
            .flush()
            .map_err(|e| Error::Input(format!("--emit-resp: {e}")))?;
        Ok(WriteStats {
            commands: self.commands,
            retries: 0,
        })
    }
}

/// SIGINT/SIGTERM stop writes between batches; the run then fails without committing and
/// releases its lock. A second signal ends the process at once.
pub fn install_signal_handlers() {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Order matters: the shutdown check runs before the flag is set by this signal.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, INTERRUPTED.clone());
        let _ = signal_hook::flag::register(sig, INTERRUPTED.clone());
    }
}
