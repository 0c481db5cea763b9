//! One service's run: locked before any data is read, written partition by partition, then
//! committed (or refused, and what it wrote taken back).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::commit::{ShardManifest, commit_and_retire, current_before, recorded};
use super::layout::Layout;
use super::partitions::ViewTotals;
use super::{MaterializeOptions, Output, ServiceReport, Status, lifecycle};
use crate::assemble::{Assembler, ColumnCounts, ViewChecks, ViewInput};
use crate::base::error::{Error, Result};
use crate::base::interrupt::interrupted;
use crate::base::time::{format_us, now_us};
use crate::offline::{LatestRows, Shard, ViewScan};
use crate::online::{
    self, CommandSink, Flip, KeySpace, Manifest, OnlineStore, RespFile, RunLock, WriteStats,
};
use crate::progress::{Of, Progress};
use crate::repo::{OutputLayout, Repo, Service};

/// Entities assembled and written per chunk (bounds memory of encoded vectors in flight).
const CHUNK: usize = 16 * 1024;
/// SET commands per pipeline batch.
const BATCH: usize = 1000;

pub(crate) struct ServiceJob<'a> {
    pub(crate) repo: &'a Repo,
    pub(crate) service: &'a Service,
    pub(crate) snapshot: String,
    pub(crate) keys: KeySpace,
    pub(crate) end_us: i64,
    opts: &'a MaterializeOptions,
    store: &'a dyn OnlineStore,
    progress: Progress,
    pub(crate) created_at: String,
    lock: Option<RunLock>,
    /// When the run registered itself in `runs`.
    started_ms: i64,
    expected_current: String,
    /// The snapshot was committed before (rerun with --force): its keys are never discarded.
    was_committed: bool,
    sink: Option<Box<dyn CommandSink + Send>>,
    pub(crate) counts: Vec<ColumnCounts>,
    pub(crate) entities: u64,
    pub(crate) bytes_written: u64,
    pub(crate) refused: Option<Error>,
    encode_t: Duration,
    write_t: Duration,
    /// The current snapshot's manifest when the run planned, once read.
    last: std::sync::OnceLock<Option<Manifest>>,
}

impl<'a> ServiceJob<'a> {
    pub(crate) fn new(
        repo: &'a Repo,
        service: &'a Service,
        snapshot: String,
        end_us: i64,
        opts: &'a MaterializeOptions,
        store: &'a dyn OnlineStore,
        progress: Progress,
    ) -> ServiceJob<'a> {
        ServiceJob {
            repo,
            service,
            snapshot,
            keys: KeySpace::new(&repo.online.key_prefix, &repo.project, &service.name),
            end_us,
            opts,
            store,
            progress,
            created_at: format_us(now_us()),
            lock: None,
            started_ms: 0,
            expected_current: String::new(),
            was_committed: false,
            sink: None,
            counts: vec![ColumnCounts::default(); service.features.len()],
            entities: 0,
            bytes_written: 0,
            refused: None,
            encode_t: Duration::ZERO,
            write_t: Duration::ZERO,
            last: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn skip_checks(&self) -> bool {
        self.opts.skip_checks
    }

    fn writes_redis(&self) -> bool {
        matches!(self.opts.output, Output::Redis)
    }

    /// Takes the run lock and checks what is current; returns a report when there is nothing
    /// to do. Opens the write connections.
    pub(crate) fn prepare(&mut self) -> Result<Option<ServiceReport>> {
        if !self.writes_redis() {
            return Ok(None);
        }
        if self.repo.layout == OutputLayout::Feast {
            return self.prepare_feast();
        }
        if let Some(shard) = self.opts.shard {
            return self.prepare_shard(shard);
        }
        if !self.opts.force && self.store.is_committed(&self.keys, &self.snapshot)? {
            return Ok(Some(self.report(Status::AlreadyCommitted)));
        }
        let lease = Duration::from_millis(self.repo.lock_lease_ms as u64);
        let lock = match self
            .store
            .lock(&self.keys, lease, self.opts.wait_lock, &self.snapshot)
        {
            // `fsctl gc` holds the lock for seconds: wait for it rather than fail a scheduled run.
            Err(Error::LockHeld {
                holder: Some(h), ..
            }) if lifecycle::is_gc(&h) => self.store.lock(
                &self.keys,
                lease,
                lease.max(self.opts.wait_lock),
                &self.snapshot,
            )?,
            other => other?,
        };
        // Checked again under the lock: another run may have committed it meanwhile.
        self.was_committed = self.store.is_committed(&self.keys, &self.snapshot)?;
        if self.was_committed && !self.opts.force {
            lock.release();
            return Ok(Some(self.report(Status::AlreadyCommitted)));
        }
        if self.was_committed
            && let Some(retired_at) = self
                .store
                .manifest(&self.keys, &self.snapshot)?
                .and_then(|m| m.retired_at)
        {
            // --force on a retired snapshot: it never becomes current again (SPEC §3.1).
            return Err(Error::CommitRefused {
                service: self.service.name.clone(),
                reason: format!(
                    "snapshot {} (these inputs and window) was retired at {retired_at}, and a retired \
                     snapshot never becomes current again; a later --end makes a new one",
                    self.snapshot
                ),
            });
        }
        self.expected_current = self.check_before_writing()?;
        self.lock = Some(lock);
        self.start_writing()?;
        Ok(None)
    }

    /// What `current` is, after checking that this run would not move it back in time and
    /// fits under `maxmemory`.
    fn check_before_writing(&self) -> Result<String> {
        let current = current_before(
            self.store,
            &self.keys,
            &self.service.name,
            self.end_us,
            self.opts.force,
        )?;
        lifecycle::check_capacity(
            self.repo,
            self.store,
            self.service,
            &self.keys,
            self.progress,
            self.opts.verbose,
            self.opts.shard.map_or(1, |s| s.count),
        )?;
        Ok(current)
    }

    /// Registers the run before its first write, so that a killed run's keys are found and
    /// retired, and opens the write connections.
    fn start_writing(&mut self) -> Result<()> {
        self.started_ms = now_us() / 1000;
        self.store
            .register_run(&self.keys, &self.snapshot, self.started_ms)?;
        self.sink = Some(self.store.writer()?);
        Ok(())
    }

    /// `prepare` for the Feast layout (SPEC §3.4): there is no snapshot to stage, only the
    /// window the unit last committed. A rerun of it is a no-op; an older one is refused
    /// without `--force` (it would look like going back in time, though Feast's rule keeps
    /// every newer row).
    /// A shard (SPEC §3.3) takes no lock: the shards of a job write disjoint entities, and
    /// the commit records the manifest once all of them did.
    fn prepare_feast(&mut self) -> Result<Option<ServiceReport>> {
        let lock = match self.opts.shard {
            Some(shard) => {
                if !self.opts.force && recorded(self.store, &self.keys, &self.snapshot, shard)? {
                    let mut report = self.report(Status::AlreadyRecorded);
                    report.shard = Some(shard);
                    return Ok(Some(report));
                }
                None
            }
            None => {
                let lease = Duration::from_millis(self.repo.lock_lease_ms as u64);
                Some(
                    self.store
                        .lock(&self.keys, lease, self.opts.wait_lock, &self.snapshot)?,
                )
            }
        };
        let outcome = super::feast::before_writing(
            self.store,
            &self.keys,
            &self.service.name,
            &self.snapshot,
            self.opts.start_us.is_some(),
            self.end_us,
            self.opts.force,
        );
        if !matches!(outcome, Ok(None)) {
            if let Some(lock) = lock {
                lock.release();
            }
            return outcome.map(|done| done.map(|status| self.report(status)));
        }
        self.lock = lock;
        self.sink = Some(self.store.writer()?);
        Ok(None)
    }

    /// `prepare` for one shard of a sharded run (SPEC §3.3): no run lock (the shards of a job
    /// write side by side, and a shard's rerun writes the same bytes); the snapshot is marked
    /// sharded before the first write so that retirement leaves it for its commit.
    fn prepare_shard(&mut self, shard: Shard) -> Result<Option<ServiceReport>> {
        if !self.opts.force {
            if self.store.is_committed(&self.keys, &self.snapshot)? {
                return Ok(Some(self.report(Status::AlreadyCommitted)));
            }
            if recorded(self.store, &self.keys, &self.snapshot, shard)? {
                let mut report = self.report(Status::AlreadyRecorded);
                report.shard = Some(shard);
                return Ok(Some(report));
            }
        }
        self.was_committed = self.store.is_committed(&self.keys, &self.snapshot)?;
        self.check_before_writing()?;
        self.store
            .register_sharded(&self.keys, &self.snapshot, self.end_us / 1000)?;
        self.start_writing()?;
        Ok(None)
    }

    /// How many entities this run will hold and the memory each takes while its partition is
    /// read (see `partitions::partitions_within`): sized like the current snapshot when there is
    /// one, else from the rows to read.
    pub(crate) fn planned_memory(&self, scans: &HashMap<usize, ViewScan>) -> (u64, u64) {
        let shards = u64::from(self.opts.shard.map_or(1, |s| s.count));
        let views = self.service.views.len();
        // Also for a dry run or --emit-resp, so that they read as the real run would; a store
        // that cannot be reached sizes from the rows.
        if let Some(m) = self.last_manifest().filter(|m| m.entities > 0) {
            // A little room for growth since the last run.
            let entities = m.entities + m.entities / 10;
            let vector = m.bytes_written / m.entities;
            return (
                entities / shards,
                super::partitions::entity_bytes(vector, views),
            );
        }
        let rows = self
            .service
            .views
            .iter()
            .map(|v| scans[v].rows_to_read())
            .max()
            .unwrap_or(0);
        (rows / shards, super::partitions::UNSIZED_ENTITY_BYTES)
    }

    /// The current snapshot's manifest, read once (the run sizes its partitions and chooses its
    /// passes from it).
    fn last_manifest(&self) -> Option<&Manifest> {
        self.last
            .get_or_init(|| {
                self.store
                    .current(&self.keys)
                    .ok()
                    .flatten()
                    .and_then(|c| c.manifest)
            })
            .as_ref()
    }

    /// Each view's entities in the current snapshot (none without one, or when the store cannot
    /// be reached).
    pub(crate) fn last_view_entities(&self) -> Vec<(String, u64)> {
        let Some(m) = self.last_manifest() else {
            return Vec::new();
        };
        m.sources
            .iter()
            .map(|(v, s)| (v.clone(), s.entities))
            .collect()
    }

    /// Assembles, encodes and writes the service's entities found in one partition's rows.
    pub(crate) fn write_part(
        &mut self,
        scans: &HashMap<usize, ViewScan>,
        latest: &HashMap<usize, LatestRows>,
        mut resp: Option<&mut RespFile>,
        abort: &std::sync::atomic::AtomicBool,
    ) -> Result<()> {
        let (repo, s) = (self.repo, self.service);
        let inputs: Vec<ViewInput<'_>> = s
            .views
            .iter()
            .map(|v| ViewInput {
                scan: &scans[v],
                rows: &latest[v],
            })
            .collect();
        let assembler = Assembler::new(repo, s, inputs);
        let entities = assembler.entities();
        self.entities += entities.len() as u64;
        let as_of_ms = self.end_us / 1000;
        let layout = Layout::of(
            repo,
            s,
            &self.keys,
            &self.snapshot,
            as_of_ms,
            s.online_ttl_ms,
        );
        // Listed before any of them is written, so whatever lands can be retired by name: one
        // frame (one round trip) per partition.
        let frame = (self.sink.is_some() && !entities.keys().is_empty())
            .then(|| layout.key_list_frame(entities.keys().iter().copied()))
            .flatten();
        if let Some(frame) = frame {
            let (_, last_expiry) = online::expiry_bounds(
                self.end_us / 1000,
                s.online_ttl_ms.max(s.hot_ttl_ms),
                repo.ttl_jitter,
            );
            self.store.append_key_list(
                &self.keys,
                &self.snapshot,
                &frame,
                self.started_ms,
                last_expiry,
            )?;
        }
        let action = match self.opts.output {
            Output::DryRun => "encode (dry run, nothing written)",
            Output::EmitResp(_) => "emit",
            Output::Redis => "write",
        };
        let phase = self.progress.phase(
            match self.opts.output {
                Output::DryRun => "encode",
                Output::EmitResp(_) => "emit",
                Output::Redis => "write",
            },
            &format!("{action} {}", s.name),
            Of::Service(&s.name),
            entities.len() as u64,
            "entities",
        );
        for chunk in entities.chunks(CHUNK) {
            if interrupted() || abort.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let t = Instant::now();
            let batches = layout.stage(&assembler, chunk, BATCH, &mut self.counts);
            self.encode_t += t.elapsed();
            let t = Instant::now();
            for batch in batches {
                self.bytes_written += batch.value_bytes() as u64;
                if let Some(sink) = self.sink.as_mut() {
                    sink.send(batch)?;
                } else if let Some(resp) = resp.as_deref_mut() {
                    resp.send(batch)?;
                }
            }
            self.write_t += t.elapsed();
            phase.inc(chunk.len() as u64);
        }
        phase.finish();
        Ok(())
    }

    /// After a refusal: waits for the writes in flight, deletes what this run wrote for its
    /// snapshot (by its key list; never a snapshot committed before) and releases the lock.
    /// Best effort: what a failure leaves behind is invisible to readers, listed, and retired
    /// by the next run or `fsctl gc`.
    pub(crate) fn discard(&mut self) {
        if let Some(sink) = self.sink.take() {
            let _ = sink.finish();
        }
        // A shard's keys share the snapshot's key list with the other shards: they stay,
        // listed, until the commit or a retirement.
        if self.writes_redis()
            && !self.was_committed
            && self.opts.shard.is_none()
            // Feast's hashes are written in place: nothing to take back.
            && self.repo.layout == OutputLayout::Fsctl
            && let Err(e) = lifecycle::discard(self.store, &self.keys, &self.snapshot)
        {
            self.progress.warn(
                &self.service.name,
                &format!("could not take back what this run wrote ({e}); the next run or `fsctl gc` retires it"),
            );
        }
        if let Some(lock) = self.lock.take() {
            lock.release();
        }
    }

    /// Waits for every write, then writes the manifest and commits.
    pub(crate) fn finish(
        mut self,
        scans: &HashMap<usize, ViewScan>,
        totals: &HashMap<usize, ViewTotals>,
        checks: &HashMap<usize, ViewChecks>,
        resp: Option<&mut RespFile>,
    ) -> Result<ServiceReport> {
        let (repo, s) = (self.repo, self.service);
        let t = Instant::now();
        let stats = match self.sink.take() {
            Some(sink) => sink.finish()?,
            None => Default::default(),
        };
        self.write_t += t.elapsed();
        if let Some(shard) = self.opts.shard {
            return self.finish_shard(shard, scans, totals, checks, stats);
        }
        // Feast's hashes are written in place: a window without rows wipes nothing.
        if self.entities == 0 && !self.opts.allow_empty && repo.layout == OutputLayout::Fsctl {
            return Err(Error::EmptyResult {
                service: s.name.clone(),
            });
        }
        let mut manifest = super::manifest::build(&self, scans, totals);
        let (_, highest) = online::expiry_bounds(
            self.end_us / 1000,
            s.online_ttl_ms.max(s.hot_ttl_ms),
            repo.ttl_jitter,
        );

        let t = Instant::now();
        let mut retired = None;
        let status = match &self.opts.output {
            Output::DryRun => {
                manifest.keys_written = 0;
                Status::DryRun
            }
            output => {
                let committed_at_ms = now_us() / 1000;
                manifest.committed_at = format_us(committed_at_ms * 1000);
                let json = serde_json::to_string(&manifest).expect("manifest serializes");
                let mut flip = Flip {
                    snapshot: &self.snapshot,
                    manifest_json: &json,
                    manifest_pxat_ms: highest,
                    committed_at_ms,
                    expected_current: "",
                };
                match (output, resp) {
                    (Output::EmitResp(_), Some(resp)) if repo.layout == OutputLayout::Feast => {
                        for keys in super::feast::manifest_keys(repo, s) {
                            let key = keys.feast_manifest();
                            resp.command(&[b"SET", key.as_bytes(), json.as_bytes()])?;
                        }
                        Status::Emitted
                    }
                    (Output::EmitResp(_), Some(resp)) => {
                        for cmd in online::commit_commands(&self.keys, &flip) {
                            let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
                            resp.command(&args)?;
                        }
                        Status::Emitted
                    }
                    (Output::EmitResp(_), None) => unreachable!("an emitting run has its file"),
                    (Output::Redis, _) if repo.layout == OutputLayout::Feast => {
                        let lock = self
                            .lock
                            .take()
                            .expect("a run writing to Redis holds the lock");
                        super::feast::record(self.store, repo, s, &json, &lock)?;
                        lock.release();
                        Status::Committed
                    }
                    _ => {
                        let lock = self
                            .lock
                            .take()
                            .expect("a run writing to Redis holds the lock");
                        flip.expected_current = &self.expected_current;
                        retired = Some(commit_and_retire(
                            repo,
                            self.store,
                            &self.keys,
                            lock,
                            &flip,
                            !self.was_committed,
                        )?);
                        Status::Committed
                    }
                }
            }
        };
        let mut report = self.filled(status, manifest, &stats);
        report.phases_ms.insert("commit", ms(t.elapsed()));
        match retired {
            Some(Ok(r)) => report.retired = Some(r),
            Some(Err(e)) => {
                self.progress.warn(
                    &s.name,
                    &format!("committed, but retiring older snapshots failed: {e}; the next run or `fsctl gc` finishes it"),
                );
                report.retire_error = Some(e);
            }
            None => {}
        }
        Ok(report)
    }

    /// Records a shard's manifest, with the statistics the commit's quality gate sums
    /// (SPEC §3.3).
    fn finish_shard(
        self,
        shard: Shard,
        scans: &HashMap<usize, ViewScan>,
        totals: &HashMap<usize, ViewTotals>,
        checks: &HashMap<usize, ViewChecks>,
        stats: WriteStats,
    ) -> Result<ServiceReport> {
        let (repo, s) = (self.repo, self.service);
        let manifest = super::manifest::build(&self, scans, totals);
        let t = Instant::now();
        let status = if self.writes_redis() {
            let recorded = ShardManifest {
                shard: shard.index,
                shards: shard.count,
                checks: s
                    .views
                    .iter()
                    .map(|v| {
                        let name = repo.views[*v].name.clone();
                        (name, checks[v].record(repo, &scans[v]))
                    })
                    .collect(),
                recorded_at: format_us(now_us()),
                manifest: manifest.clone(),
            };
            let (_, highest) = match repo.layout {
                // Feast's expiries count from the write: the shard manifest waits a week for
                // its commit.
                OutputLayout::Feast => (0, now_us() / 1000 + 7 * 86_400_000),
                OutputLayout::Fsctl => online::expiry_bounds(
                    self.end_us / 1000,
                    s.online_ttl_ms.max(s.hot_ttl_ms),
                    repo.ttl_jitter,
                ),
            };
            let json = serde_json::to_string(&recorded).expect("shard manifest serializes");
            self.store.put_shard_manifest(
                &self.keys,
                &self.snapshot,
                shard.index,
                &json,
                highest,
            )?;
            Status::ShardRecorded
        } else {
            Status::DryRun
        };
        let mut report = self.filled(status, manifest, &stats);
        report.phases_ms.insert("record", ms(t.elapsed()));
        report.shard = Some(shard);
        Ok(report)
    }

    /// The report of a finished run, with its figures.
    fn filled(&self, status: Status, manifest: Manifest, stats: &WriteStats) -> ServiceReport {
        let mut report = self.report(status);
        report
            .phases_ms
            .insert("assemble_encode", ms(self.encode_t));
        let phase = match self.opts.output {
            Output::DryRun => "dry_run",
            Output::EmitResp(_) => "emit",
            Output::Redis => "write",
        };
        report.phases_ms.insert(phase, ms(self.write_t));
        report.entities = self.entities;
        report.keys_written = manifest.keys_written;
        report.bytes_written = self.bytes_written;
        report.retries = stats.retries;
        report.null_entity_rows = manifest.null_entity_rows;
        report.imputed = manifest.imputed.clone();
        report.manifest = Some(manifest);
        report
    }

    /// A report with the job's identity and no figures yet.
    pub(crate) fn report(&self, status: Status) -> ServiceReport {
        ServiceReport::new(self.repo, self.service, status, &self.snapshot)
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}
