//! The Parquet sink: a folder an analyst points DuckDB, Polars, pandas or Spark at, with
//! the sync's state kept beside the data so the next run is incremental.
//!
//! ```text
//! DIR/state.json                                   Airbyte STATE messages, one per stream
//! DIR/views.sql                                    DuckDB views: <stream> (latest versions)
//! DIR/<stream>/part-<run>-<n>.parquet              one account
//! DIR/<stream>/stripe_account=<acct>/part-….parquet  connected_accounts (Hive partitioning)
//! ```
//!
//! Every run adds files and never rewrites one: names carry the run's start time (unix
//! ms) and a random tag. A file is written under a hidden temporary name
//! (`.part-….parquet.tmp`), closed, synced and only then renamed, so readers never see
//! half a file. Closed files are synced and renamed in batches, many at once (a platform
//! sync closes a file per stream and account: one fsync wait each would set its pace). A
//! run that dies leaves at most such hidden files, which the next run removes.
//!
//! State: a STATE for a stream covers every record of that stream sent before it. The sink
//! keeps the latest one per stream (per stream and account with connected accounts) and
//! writes it to `state.json` (temporary file, sync, rename; at most once a second, and
//! always after the closed files are synced and renamed) only once no open file holds a
//! record it covers: when the stream has no open file, otherwise when the file is closed
//! (it rolls at `rows_per_file` rows, or the run ends). So the saved state never
//! points past data that is not on disk; a killed run resumes from it, and at worst writes
//! again records already on disk, which the latest-version query settles.
//!
//! Memory stays bounded whatever the data size: records are encoded into Arrow batches of
//! at most [`BATCH_ROWS`] rows or [`BATCH_BYTES`] of JSON, and a row group is flushed to
//! disk when it passes [`ROW_GROUP_BYTES`], or when all open files together buffer more
//! than [`BUFFER_BUDGET`] (then the largest goes first). At most [`MAX_OPEN_FILES`] files
//! are open at once (the least recently written is closed first), and a file is closed
//! after [`MAX_ROW_GROUPS_PER_FILE`] row groups (their metadata is held until then).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde_json::{Map, Value};

use super::Sink;
use super::columns::{ACCOUNT, Columns, Encoder};
use crate::protocol::{AirbyteMessage, now_ms};

/// Rows per Arrow batch handed to the Parquet writer.
pub const BATCH_ROWS: usize = 4_096;
/// JSON bytes per Arrow batch: wide records (invoices, charges) cut batches earlier.
pub const BATCH_BYTES: usize = 2 << 20;
/// A row group is flushed once its encoded size passes this.
pub const ROW_GROUP_BYTES: usize = 32 << 20;
/// Rows per row group at most.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Bytes all open files may buffer together (encoders and row groups in progress).
pub const BUFFER_BUDGET: usize = 8 << 20;
/// Files open at once (with many connected accounts: one per stream and account).
pub const MAX_OPEN_FILES: usize = 64;
/// A file is closed after this many row groups: their metadata stays in memory until the
/// file is closed.
pub const MAX_ROW_GROUPS_PER_FILE: usize = 32;
/// Default rows per file before it is closed and a new one started.
pub const DEFAULT_ROWS_PER_FILE: u64 = 1_000_000;
/// `state.json` is rewritten at most this often.
const STATE_WRITE_INTERVAL: Duration = Duration::from_secs(1);
/// Closed files are made durable and visible in batches of at most this many.
const SETTLE_BATCH: usize = 64;
/// Threads that sync files at once.
const SYNC_THREADS: usize = 16;

/// The state file's name in the folder.
pub const STATE_FILE: &str = "state.json";
/// The DuckDB views file's name in the folder.
pub const VIEWS_FILE: &str = "views.sql";

/// Options of a [`ParquetFolder`].
#[derive(Debug, Clone)]
pub struct Options {
    /// A file is closed (and its state saved) after this many rows.
    pub rows_per_file: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rows_per_file: DEFAULT_ROWS_PER_FILE,
        }
    }
}

/// Which file a record goes to: its stream, and its account with connected accounts.
type Key = (String, Option<String>);

/// One stream's saved state: one value, or one per connected account.
#[derive(Debug, Clone)]
enum Saved {
    One(Value),
    Accounts(Map<String, Value>),
}

/// A file with its footer written, waiting for [`ParquetFolder::settle`].
struct Closed {
    file: File,
    tmp: PathBuf,
    path: PathBuf,
}

/// Runs `f` on every item, on up to [`SYNC_THREADS`] threads at once.
fn in_parallel<T: Sync>(items: &[T], f: impl Fn(&T) -> io::Result<()> + Sync) -> io::Result<()> {
    if items.len() <= 1 {
        return items.iter().try_for_each(&f);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let threads: Vec<_> = items
            .chunks(items.len().div_ceil(SYNC_THREADS))
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(f)))
            .collect();
        threads.into_iter().try_for_each(|thread| {
            thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a file sync thread panicked")))
        })
    })
}

struct OpenFile {
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<File>,
    encoder: Encoder,
    /// Rows appended, written or not.
    rows: u64,
    /// For closing the least recently used file first.
    last_used: u64,
}

impl OpenFile {
    /// Memory this file holds: the encoder's rows (estimated by their JSON size) and the
    /// writer's row group in progress.
    fn buffered(&self) -> usize {
        self.encoder.bytes() + self.writer.memory_size()
    }

    fn write_batch(&mut self) -> io::Result<()> {
        if self.encoder.rows() == 0 {
            return Ok(());
        }
        let batch = self.encoder.finish().map_err(io::Error::other)?;
        self.writer.write(&batch).map_err(io::Error::other)?;
        if self.writer.in_progress_size() > ROW_GROUP_BYTES {
            self.writer.flush().map_err(io::Error::other)?;
        }
        Ok(())
    }
}

/// The Parquet folder sink (see the module docs).
pub struct ParquetFolder {
    dir: PathBuf,
    options: Options,
    props: WriterProperties,
    /// Start of this run, unix ms: in file names and the `_synced_at` column.
    run_ms: i64,
    /// Random tag in file names, so two runs in the same millisecond never collide.
    tag: String,
    /// Files started by this run.
    file_number: u64,
    /// Next `_seq`.
    seq: i64,
    tick: u64,
    columns: HashMap<String, Arc<Columns>>,
    open: HashMap<Key, OpenFile>,
    /// Files closed since the last [`ParquetFolder::settle`].
    closed: Vec<Closed>,
    /// A settle failed: see [`ParquetFolder::settle`].
    poisoned: bool,
    /// States on disk (or about to be), by stream.
    saved: BTreeMap<String, Saved>,
    /// Latest states received for a stream (and account) that has an open file.
    pending: HashMap<Key, Value>,
    state_dirty: bool,
    state_written: Instant,
    counts: BTreeMap<String, u64>,
    files: Vec<PathBuf>,
    errors: Vec<String>,
    /// With an object-store destination: `dir` is the staging folder, and every closed
    /// file, the state and the views go up to the store (see [`super::store`]).
    remote: Option<Arc<super::store::Remote>>,
    /// The state file's name ([`STATE_FILE`], or a shard's).
    state_file: String,
}

impl ParquetFolder {
    /// Opens (creating it if missing) the folder; reads its `state.json` if there is one,
    /// and removes temporary files a dead run left.
    ///
    /// # Errors
    /// When the folder cannot be created or read, or its state file is not a list of
    /// STATE messages.
    pub fn create(dir: &Path, options: Options) -> io::Result<ParquetFolder> {
        let folder = Self::create_shared(dir, options, &|_| true)?;
        remove_state_temporaries(dir, STATE_FILE)?;
        Ok(folder)
    }

    /// [`ParquetFolder::create`] for a folder other processes write too (shards): only
    /// the temporary files of partitions `owns` accepts are removed (`None`: a stream
    /// folder without accounts; `Some(acct)`: that account's).
    ///
    /// # Errors
    /// As [`ParquetFolder::create`].
    pub fn create_shared(
        dir: &Path,
        options: Options,
        owns: &dyn Fn(Option<&str>) -> bool,
    ) -> io::Result<ParquetFolder> {
        fs::create_dir_all(dir)?;
        remove_temporary_files(dir, owns)?;
        let saved = read_saved_states(&dir.join(STATE_FILE))?;
        let props = writer_properties();
        let run_ms = now_ms();
        Ok(ParquetFolder {
            dir: dir.to_owned(),
            options,
            props,
            run_ms,
            tag: format!("{:06x}", rand::random::<u32>() & 0xff_ffff),
            file_number: 0,
            seq: 0,
            tick: 0,
            columns: HashMap::new(),
            open: HashMap::new(),
            closed: Vec::new(),
            poisoned: false,
            saved,
            pending: HashMap::new(),
            state_dirty: false,
            state_written: Instant::now(),
            counts: BTreeMap::new(),
            files: Vec::new(),
            errors: Vec::new(),
            remote: None,
            state_file: STATE_FILE.to_owned(),
        })
    }

    /// Uploads every file when it is closed, and the state and views, to `remote`; the
    /// folder given to [`ParquetFolder::create`] is then only a staging area.
    pub fn with_remote(mut self, remote: Arc<super::store::Remote>) -> ParquetFolder {
        self.remote = Some(remote);
        self
    }

    /// Keeps the state in `name` instead of [`STATE_FILE`] (a shard's own state file),
    /// reading the states saved there.
    ///
    /// # Errors
    /// As [`ParquetFolder::create`] for the state file.
    pub fn with_state_file(mut self, name: &str) -> io::Result<ParquetFolder> {
        remove_state_temporaries(&self.dir, name)?;
        self.saved = read_saved_states(&self.dir.join(name))?;
        self.state_file = name.to_owned();
        Ok(self)
    }

    /// Records written per stream by this run.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// Files this run wrote (final names), in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Error messages the sync reported, in order.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    fn columns(&mut self, stream: &str) -> io::Result<Arc<Columns>> {
        if let Some(columns) = self.columns.get(stream) {
            return Ok(columns.clone());
        }
        let def = crate::streams::find(stream).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no schema for stream {stream}"),
            )
        })?;
        let columns = Arc::new(Columns::for_schema(def.schema).map_err(io::Error::other)?);
        self.columns.insert(stream.to_owned(), columns.clone());
        Ok(columns)
    }

    fn open_file(&mut self, key: &Key) -> io::Result<()> {
        if self.open.contains_key(key) {
            return Ok(());
        }
        if self.open.len() >= MAX_OPEN_FILES
            && let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, f)| f.last_used)
                .map(|(k, _)| k.clone())
        {
            self.close(&oldest)?;
        }
        let columns = self.columns(&key.0)?;
        let mut folder = self.dir.join(&key.0);
        if let Some(account) = &key.1 {
            folder.push(format!("{ACCOUNT}={}", sanitize(account)));
        }
        fs::create_dir_all(&folder)?;
        self.file_number += 1;
        let name = format!(
            "part-{}-{}-{:05}.parquet",
            self.run_ms, self.tag, self.file_number
        );
        let tmp = folder.join(format!(".{name}.tmp"));
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let writer = ArrowWriter::try_new(file, columns.schema().clone(), Some(self.props.clone()))
            .map_err(io::Error::other)?;
        self.open.insert(
            key.clone(),
            OpenFile {
                tmp,
                path: folder.join(name),
                writer,
                encoder: columns.encoder(),
                rows: 0,
                last_used: self.tick,
            },
        );
        Ok(())
    }

    /// Closes a file: writes its footer and saves the state it held back; the file gets
    /// its final name with the next [`ParquetFolder::settle`] (at the latest when a state
    /// file is written, so no saved state is ever stored before its records).
    fn close(&mut self, key: &Key) -> io::Result<()> {
        let Some(mut file) = self.open.remove(key) else {
            return Ok(());
        };
        file.write_batch()?;
        let inner = file.writer.into_inner().map_err(io::Error::other)?;
        self.closed.push(Closed {
            file: inner,
            tmp: file.tmp,
            path: file.path,
        });
        if let Some(state) = self.pending.remove(key) {
            self.save(key, state);
        }
        // At most one state file per interval: with thousands of accounts a sync closes
        // thousands of files, and each state file holds every account's state.
        if self.closed.len() >= SETTLE_BATCH || self.state_written.elapsed() >= STATE_WRITE_INTERVAL
        {
            self.write_state_file()?;
        }
        Ok(())
    }

    /// Makes the closed files durable and visible: every file synced (in parallel, so
    /// that a batch waits for about one journal commit rather than one per file), renamed
    /// to its final name, its folder synced, and uploaded with a remote destination.
    ///
    /// After a failure the folder is poisoned: no state file is written any more, since
    /// the states already saved may cover records that were not stored.
    fn settle(&mut self) -> io::Result<()> {
        if self.closed.is_empty() {
            return Ok(());
        }
        self.poisoned = true;
        let closed = std::mem::take(&mut self.closed);
        in_parallel(&closed, |c| c.file.sync_all())?;
        let mut folders = BTreeSet::new();
        for c in &closed {
            if c.path.exists() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists; files are never overwritten", c.path.display()),
                ));
            }
            fs::rename(&c.tmp, &c.path)?;
            if let Some(parent) = c.path.parent() {
                folders.insert(parent.to_owned());
            }
        }
        let folders: Vec<PathBuf> = folders.into_iter().collect();
        in_parallel(&folders, |folder| sync_dir(folder))?;
        for c in closed {
            drop(c.file);
            if let Some(remote) = &self.remote {
                // Stored before the state that covers it is saved.
                remote.upload_blocking(&c.path, &self.relative(&c.path))?;
                fs::remove_file(&c.path)?;
            }
            self.files.push(c.path);
        }
        self.poisoned = false;
        Ok(())
    }

    /// Records a state as saved (written with the next state file).
    fn save(&mut self, key: &Key, state: Value) {
        let (stream, account) = key;
        match account {
            None => {
                self.saved.insert(stream.clone(), Saved::One(state));
            }
            Some(account) => {
                let entry = self
                    .saved
                    .entry(stream.clone())
                    .or_insert_with(|| Saved::Accounts(Map::new()));
                if let Saved::One(_) = entry {
                    *entry = Saved::Accounts(Map::new());
                }
                if let Saved::Accounts(accounts) = entry {
                    accounts.insert(account.clone(), state);
                }
            }
        }
        self.state_dirty = true;
    }

    fn write_state_file(&mut self) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other(
                "a file could not be stored: no state is saved past it",
            ));
        }
        self.settle()?;
        if !self.state_dirty {
            return Ok(());
        }
        let messages: Vec<AirbyteMessage> = self
            .saved
            .iter()
            .map(|(stream, saved)| {
                let state = match saved {
                    Saved::One(value) => value.clone(),
                    Saved::Accounts(accounts) => {
                        serde_json::json!({ "accounts": accounts })
                    }
                };
                AirbyteMessage::state(stream, state, 0)
            })
            .collect();
        let content = serde_json::to_vec_pretty(&messages)?;
        write_atomically(&self.dir.join(&self.state_file), &content)?;
        if let Some(remote) = &self.remote {
            remote.put_blocking(&self.state_file, content)?;
        }
        self.state_dirty = false;
        self.state_written = Instant::now();
        Ok(())
    }

    /// Keeps the total buffered bytes under [`BUFFER_BUDGET`]: the largest buffers go to
    /// disk first.
    fn enforce_budget(&mut self) -> io::Result<()> {
        for _ in 0..self.open.len() {
            let total: usize = self.open.values().map(OpenFile::buffered).sum();
            if total <= BUFFER_BUDGET {
                return Ok(());
            }
            let Some(largest) = self.open.values_mut().max_by_key(|f| f.buffered()) else {
                return Ok(());
            };
            largest.write_batch()?;
            largest.writer.flush().map_err(io::Error::other)?;
        }
        Ok(())
    }

    fn write_views(&self) -> io::Result<()> {
        let mut sql = String::from(
            "-- DuckDB views over this folder: `<stream>` is the latest version of every object,\n\
             -- deleted ones left out; `<stream>_versions` is every row written.\n\
             -- Paths are relative to the folder's parent: run `duckdb` there, then `.read <folder>/views.sql`.\n",
        );
        let name = self.dir.file_name().map_or_else(
            || self.dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut streams: Vec<String> = Vec::new();
        if let Some(remote) = &self.remote {
            let mut sql = sql.replace(
                "-- Paths are relative to the folder's parent: run `duckdb` there, then `.read <folder>/views.sql`.\n",
                "-- Paths are URLs: DuckDB reads them with its httpfs extension (and S3 secrets).\n",
            );
            for stream in remote.folders_blocking()? {
                if crate::streams::find(&stream).is_some() {
                    sql.push_str(&view_sql(&stream, &remote.url(&stream)));
                }
            }
            return remote.put_blocking(VIEWS_FILE, sql.into_bytes());
        }
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                streams.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        streams.sort();
        for stream in streams {
            if crate::streams::find(&stream).is_none() {
                continue;
            }
            sql.push_str(&view_sql(&stream, &format!("{name}/{stream}")));
        }
        write_atomically(&self.dir.join(VIEWS_FILE), sql.as_bytes())
    }
}

impl ParquetFolder {
    /// A path under the folder as a `/`-separated relative name.
    fn relative(&self, path: &Path) -> String {
        let relative = path.strip_prefix(&self.dir).unwrap_or(path);
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// How every file is written (also by compaction).
pub(crate) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        // Lists named as the Parquet spec says (`list`/`element`), for every reader.
        .set_coerce_types(true)
        // Min/max per column chunk (row group), not per page: page indexes for
        // hundreds of nested columns cost memory until the file closes.
        .set_statistics_enabled(EnabledStatistics::Chunk)
        // Measured on the emulator's data: plain + zstd is smaller and faster than
        // dictionaries here, and holds no per-column hash tables.
        .set_dictionary_enabled(false)
        .set_created_by(format!("source-stripe {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The DuckDB SQL of the two views of one stream whose files are under `path`.
pub fn view_sql(stream: &str, path: &str) -> String {
    format!(
        "CREATE OR REPLACE VIEW {stream}_versions AS\n  \
         SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true, union_by_name = true);\n\
         CREATE OR REPLACE VIEW {stream} AS\n  \
         SELECT * FROM {stream}_versions\n  \
         QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated DESC NULLS LAST, _synced_at DESC, _seq ASC) = 1\n    \
         AND is_deleted IS NOT TRUE;\n"
    )
}

impl Sink for ParquetFolder {
    fn records(&mut self, stream: &str, records: &[String]) -> io::Result<()> {
        self.tick += 1;
        for text in records {
            let record: Map<String, Value> = serde_json::from_str(text).map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a {stream} record is not a JSON object: {err}"),
                )
            })?;
            let account = record
                .get(ACCOUNT)
                .and_then(Value::as_str)
                .map(str::to_owned);
            let key: Key = (stream.to_owned(), account);
            self.open_file(&key)?;
            let (seq, synced_at, tick, rows_per_file) =
                (self.seq, self.run_ms, self.tick, self.options.rows_per_file);
            self.seq += 1;
            let full = {
                let Some(file) = self.open.get_mut(&key) else {
                    return Err(io::Error::other("the file just opened is missing"));
                };
                file.encoder.append(&record, text.len(), synced_at, seq);
                file.rows += 1;
                file.last_used = tick;
                if file.encoder.rows() >= BATCH_ROWS || file.encoder.bytes() >= BATCH_BYTES {
                    file.write_batch()?;
                }
                file.rows >= rows_per_file
                    || file.writer.flushed_row_groups().len() >= MAX_ROW_GROUPS_PER_FILE
            };
            if full {
                self.close(&key)?;
            }
        }
        *self.counts.entry(stream.to_owned()).or_default() += records.len() as u64;
        self.enforce_budget()
    }

    fn state(&mut self, stream: &str, state: &Value) -> io::Result<()> {
        let per_account = match state.get("accounts") {
            Some(Value::Object(accounts)) => Some(accounts),
            _ => None,
        };
        let states: Vec<(Key, Value)> = match per_account {
            Some(accounts) => accounts
                .iter()
                .map(|(account, value)| ((stream.to_owned(), Some(account.clone())), value.clone()))
                .collect(),
            None => vec![((stream.to_owned(), None), state.clone())],
        };
        for (key, value) in states {
            if self.open.contains_key(&key) {
                // The open file holds records this state covers: wait until it is on disk.
                self.pending.insert(key, value);
            } else {
                self.pending.remove(&key);
                self.save(&key, value);
            }
        }
        if self.state_written.elapsed() >= STATE_WRITE_INTERVAL {
            self.write_state_file()?;
        }
        Ok(())
    }

    fn message(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        match message {
            AirbyteMessage::Log { log } => eprintln!("{}: {}", log.level, log.message),
            AirbyteMessage::Trace { trace } => {
                if let Some(error) = &trace.error {
                    eprintln!("ERROR: {}", error.message);
                    self.errors.push(error.message.clone());
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let mut keys: Vec<Key> = self.open.keys().cloned().collect();
        keys.sort();
        for key in keys {
            self.close(&key)?;
        }
        self.state_dirty = true;
        self.write_state_file()?;
        self.write_views()
    }
}

/// An account id as a directory name: Stripe's ids are `acct_` and alphanumerics; anything
/// else is replaced so an id can never name another directory.
fn sanitize(account: &str) -> String {
    account
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `path` so that readers see the old content or the new, never a part.
pub(crate) fn write_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // Unique: shards write views.sql into one folder at once.
    let tmp = path.with_file_name(format!(
        ".{name}.{}-{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut file = File::create(&tmp)?;
    file.write_all(content)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Makes a rename durable (the directory entry itself is synced).
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes what a run killed while it wrote `state_file` left: its temporary copies
/// ([`write_atomically`]'s `.state.json.<pid>-<random>.tmp`). The state file has one
/// writer (the destination's lock; a shard has its own file), so none is in use.
fn remove_state_temporaries(dir: &Path, state_file: &str) -> io::Result<()> {
    let prefix = format!(".{state_file}.");
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".tmp") && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Removes the hidden `.part-*.parquet.tmp` files a dead run left (two levels deep).
fn remove_temporary_files(dir: &Path, owns: &dyn Fn(Option<&str>) -> bool) -> io::Result<()> {
    let mut folders = vec![(dir.to_owned(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        let account = folder
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(&format!("{ACCOUNT}=")))
            .map(str::to_owned);
        let mine = depth == 0 || owns(account.as_deref());
        for entry in fs::read_dir(&folder)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_dir() {
                if depth < 2 {
                    folders.push((entry.path(), depth + 1));
                }
            } else if mine && name.starts_with(".part-") && name.ends_with(".parquet.tmp") {
                fs::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}

/// The states of `state.json` by stream (none when the file is missing).
fn read_saved_states(path: &Path) -> io::Result<BTreeMap<String, Saved>> {
    let mut saved = BTreeMap::new();
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(saved),
        Err(err) => return Err(err),
    };
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a list of STATE messages: {what}", path.display()),
        )
    };
    let messages: Vec<Value> = serde_json::from_str(&text).map_err(|e| invalid(&e.to_string()))?;
    for message in messages {
        let stream = &message["state"]["stream"];
        let name = stream["stream_descriptor"]["name"]
            .as_str()
            .ok_or_else(|| invalid("a message has no state.stream.stream_descriptor.name"))?;
        let state = stream["stream_state"].clone();
        let entry = match state.get("accounts") {
            Some(Value::Object(accounts)) => Saved::Accounts(accounts.clone()),
            _ => Saved::One(state),
        };
        saved.insert(name.to_owned(), entry);
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parquet_files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut folders = vec![dir.to_owned()];
        while let Some(folder) = folders.pop() {
            for entry in fs::read_dir(folder).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_dir() {
                    folders.push(entry.path());
                } else {
                    out.push(entry.path());
                }
            }
        }
        out.sort();
        out
    }

    fn saved_state(dir: &Path) -> Value {
        serde_json::from_str(&fs::read_to_string(dir.join(STATE_FILE)).unwrap()).unwrap()
    }

    #[test]
    fn a_state_waits_until_its_records_are_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = ParquetFolder::create(dir.path(), Options { rows_per_file: 3 }).unwrap();
        let record = |id: &str| json!({"id": id, "created": 1_700_000_000}).to_string();
        sink.records("customers", &[record("cus_1"), record("cus_2")])
            .unwrap();
        sink.state("customers", &json!({"updated": 1_700_000_001}))
            .unwrap();
        sink.write_state_file().unwrap();
        assert!(
            !dir.path().join(STATE_FILE).exists(),
            "the two records are not on disk yet"
        );
        // The third record fills the file: it is closed, and the next state file (at most
        // once a second; here written at once) first makes it durable and visible, then
        // saves the state.
        sink.records("customers", &[record("cus_3")]).unwrap();
        sink.write_state_file().unwrap();
        assert_eq!(
            saved_state(dir.path())[0]["state"]["stream"]["stream_state"],
            json!({"updated": 1_700_000_001})
        );
        sink.records("customers", &[record("cus_4")]).unwrap();
        sink.state("customers", &json!({"updated": 1_700_000_002}))
            .unwrap();
        let visible: Vec<PathBuf> = parquet_files(dir.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        assert_eq!(visible.len(), 1, "{visible:?}");
        sink.finish().unwrap();
        assert_eq!(
            saved_state(dir.path())[0]["state"]["stream"]["stream_state"],
            json!({"updated": 1_700_000_002})
        );
        let files = parquet_files(dir.path());
        assert!(
            files.iter().all(|p| !p.to_string_lossy().ends_with(".tmp")),
            "{files:?}"
        );
        assert_eq!(sink.files().len(), 2);
        assert!(dir.path().join(VIEWS_FILE).exists());
    }

    /// The README's latest-version query is the one views.sql holds.
    #[test]
    fn the_readme_documents_the_views_query() {
        let readme = include_str!("../../README.md");
        let sql = view_sql("customers", "stripe/customers");
        for line in sql
            .lines()
            .filter(|l| l.contains("read_parquet") || l.contains("QUALIFY"))
        {
            let line = line.trim().trim_start_matches("SELECT * FROM ");
            let line = line.trim_end_matches(';');
            assert!(readme.contains(line), "README lacks: {line}");
        }
    }

    #[test]
    fn accounts_get_their_own_folders_and_states() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(STATE_FILE),
            json!([AirbyteMessage::state(
                "prices",
                json!({"updated": 1_600_000_000}),
                0
            )])
            .to_string(),
        )
        .unwrap();
        fs::create_dir_all(dir.path().join("charges")).unwrap();
        fs::write(
            dir.path().join("charges/.part-1-x-00001.parquet.tmp"),
            "dead",
        )
        .unwrap();
        // A run killed while it wrote its state, and a shard's state being written.
        fs::write(dir.path().join(".state.json.4242-0badf00d.tmp"), "dead").unwrap();
        fs::write(dir.path().join(".state.shard-1.json.77-1.tmp"), "live").unwrap();
        let mut sink = ParquetFolder::create(dir.path(), Options::default()).unwrap();
        assert!(
            !dir.path()
                .join("charges/.part-1-x-00001.parquet.tmp")
                .exists(),
            "a dead run's temporary file is removed"
        );
        assert!(
            !dir.path().join(".state.json.4242-0badf00d.tmp").exists(),
            "a dead run's temporary state is removed"
        );
        assert!(
            dir.path().join(".state.shard-1.json.77-1.tmp").exists(),
            "another state file's temporaries are not this run's"
        );
        let record = |id: &str, acct: &str| json!({"id": id, "stripe_account": acct}).to_string();
        sink.records("charges", &[record("ch_1", "acct_a")])
            .unwrap();
        sink.records("charges", &[record("ch_2", "acct_b")])
            .unwrap();
        sink.state(
            "charges",
            &json!({"accounts": {"acct_a": {"updated": 1}, "acct_c": {"updated": 3}}}),
        )
        .unwrap();
        sink.finish().unwrap();
        let files = parquet_files(dir.path());
        let names: Vec<String> = files
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .parent()
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert!(
            names.contains(&"charges/stripe_account=acct_a".to_owned()),
            "{names:?}"
        );
        assert!(
            names.contains(&"charges/stripe_account=acct_b".to_owned()),
            "{names:?}"
        );
        let states = saved_state(dir.path());
        let by_stream: BTreeMap<String, Value> = states
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let s = &m["state"]["stream"];
                (
                    s["stream_descriptor"]["name"].as_str().unwrap().to_owned(),
                    s["stream_state"].clone(),
                )
            })
            .collect();
        assert_eq!(
            by_stream["charges"],
            json!({"accounts": {"acct_a": {"updated": 1}, "acct_c": {"updated": 3}}})
        );
        assert_eq!(
            by_stream["prices"],
            json!({"updated": 1_600_000_000}),
            "the states of streams this run did not read are kept"
        );
    }
}
