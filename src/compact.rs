//! Compaction: merges a partition's small Parquet files (a stream folder, or one
//! account's `stripe_account=…` folder) into large ones, without changing what the
//! latest-version views return. `source-stripe compact --output-dir DIR`, and after
//! every period of continuous mode once a partition holds more than
//! `--compact-files` (default [`AUTO_COMPACT_FILES`]) files.
//!
//! Rows are copied as they are (`_synced_at` and `_seq` included), so every view orders
//! them as before. A merged file is written under a hidden temporary name, synced and
//! renamed (uploaded whole on object stores); only then are the files it replaces
//! deleted. A crash at any point leaves either the old files, or the merged file with
//! some old files beside it: their rows are then in two files, identical to the last
//! column, and the latest-version views (one row per `id`) return the same rows; the
//! next compaction merges them again and drops the exact repeats (same `id`,
//! `_synced_at` and `_seq`). A reader never sees a partial file. Deleting files is not
//! atomic with a reader's listing: a query that listed a folder just before a compaction
//! deleted a file it names fails (file not found) and can be run again.
//!
//! It holds the destination's lock ([`crate::lock`]): a continuous writer compacts
//! between its own periods, and the command refuses to run beside a writer.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{Int64Type, SchemaRef, TimestampMillisecondType};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;
use tokio::runtime::Handle;

use crate::continuous::Target;
use crate::error::{Error, Result};
use crate::sinks::columns::ACCOUNT;
use crate::sinks::parquet::writer_properties;
use crate::sinks::store::{Destination, Remote, Staging};

/// Continuous mode compacts a partition once it holds more than this many files.
pub const AUTO_COMPACT_FILES: usize = 16;
/// Files at least this big are left as they are.
pub const SMALL_FILE_BYTES: u64 = 64 << 20;
/// Input bytes merged into one file at most.
pub const MAX_MERGED_BYTES: u64 = 512 << 20;

/// What a compaction did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    /// Partitions whose files were merged.
    pub partitions: usize,
    pub files_before: usize,
    pub files_after: usize,
    pub rows: u64,
    /// Exact repeats dropped (left by a compaction that died before deleting).
    pub repeats_dropped: u64,
}

/// One data file: its name relative to the destination, and its size.
type FileRef = (String, u64);

/// `source-stripe compact`: takes the destination's lock, compacts, prints the report
/// (JSON) on stdout.
///
/// # Errors
/// The destination cannot be parsed, its lock is held, or compaction failed.
pub async fn run(
    output_dir: &Path,
    shard: Option<crate::shard::Shard>,
    min_files: usize,
) -> Result<()> {
    let target = Target {
        destination: Destination::parse(output_dir).map_err(Error::Usage)?,
        shard,
        options: crate::sinks::parquet::Options::default(),
    };
    let lock = crate::lock::Lock::acquire(&target, std::time::Duration::from_secs(600)).await?;
    let result = compact(&target, min_files).await;
    lock.release(&target).await?;
    let report = result?;
    let text = serde_json::to_string(&report).map_err(|e| Error::Output(io::Error::other(e)))?;
    println!("{text}");
    Ok(())
}

/// Compacts the partitions of `target` that hold more than `min_files` files (only the
/// shard's own accounts with `--shard`).
///
/// # Errors
/// I/O, store and Parquet errors; files merged before the error stay merged.
pub async fn compact(target: &Target, min_files: usize) -> Result<Report> {
    let target = target.clone();
    tokio::task::spawn_blocking(move || compact_blocking(&target, min_files))
        .await
        .map_err(|err| Error::Output(io::Error::other(err.to_string())))?
        .map_err(Error::Output)
}

fn is_data_file(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.starts_with("part-") && file.ends_with(".parquet")
}

/// Whether the partition folder `relative` is this target's to compact (with `--shard`,
/// only its accounts').
fn owned(target: &Target, relative: &str) -> bool {
    match target.shard {
        None => true,
        Some(shard) => relative
            .split('/')
            .nth(1)
            .and_then(|p| p.strip_prefix(&format!("{ACCOUNT}=")))
            .is_some_and(|account| shard.includes(account)),
    }
}

/// Data files by partition folder (relative, `/`-separated).
fn partitions(target: &Target) -> io::Result<BTreeMap<String, Vec<FileRef>>> {
    let mut files: Vec<FileRef> = Vec::new();
    match &target.destination {
        Destination::Local(dir) => {
            let mut folders = vec![(dir.clone(), String::new(), 0)];
            while let Some((folder, relative, depth)) = folders.pop() {
                let entries = match fs::read_dir(&folder) {
                    Ok(entries) => entries,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err),
                };
                for entry in entries {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let path = if relative.is_empty() {
                        name.clone()
                    } else {
                        format!("{relative}/{name}")
                    };
                    let kind = entry.file_type()?;
                    if kind.is_dir() && depth < 2 {
                        folders.push((entry.path(), path, depth + 1));
                    } else if kind.is_file() && depth > 0 && is_data_file(&name) {
                        files.push((path, entry.metadata()?.len()));
                    } else if kind.is_file()
                        && name.starts_with(".part-c")
                        && owned(target, &relative)
                    {
                        // A dead compaction's temporary file.
                        fs::remove_file(entry.path())?;
                    }
                }
            }
        }
        Destination::Remote(remote) => {
            files = Handle::current()
                .block_on(remote.list_sizes(""))?
                .into_iter()
                .filter(|(name, _)| name.contains('/') && is_data_file(name))
                .collect();
        }
    }
    let mut out: BTreeMap<String, Vec<FileRef>> = BTreeMap::new();
    for (name, size) in files {
        let (folder, _) = name.rsplit_once('/').unwrap_or(("", &name));
        let stream = folder.split('/').next().unwrap_or_default();
        if crate::streams::find(stream).is_none() {
            continue;
        }
        let account = folder
            .split('/')
            .nth(1)
            .and_then(|p| p.strip_prefix(&format!("{ACCOUNT}=")));
        if let Some(shard) = target.shard {
            // A shard compacts only the accounts it writes.
            match account {
                Some(account) if shard.includes(account) => {}
                _ => continue,
            }
        }
        out.entry(folder.to_owned()).or_default().push((name, size));
    }
    for files in out.values_mut() {
        files.sort();
    }
    Ok(out)
}

fn compact_blocking(target: &Target, min_files: usize) -> io::Result<Report> {
    let mut report = Report::default();
    let staging = match &target.destination {
        Destination::Remote(_) => Some(Staging::create()?),
        Destination::Local(_) => None,
    };
    for (folder, files) in partitions(target)? {
        report.files_before += files.len();
        if files.len() <= min_files.max(1) {
            report.files_after += files.len();
            continue;
        }
        let (small, large): (Vec<FileRef>, Vec<FileRef>) = files
            .into_iter()
            .partition(|(_, size)| *size < SMALL_FILE_BYTES);
        report.files_after += large.len();
        let mut groups: Vec<Vec<FileRef>> = vec![Vec::new()];
        let mut bytes = 0;
        for file in small {
            if bytes + file.1 > MAX_MERGED_BYTES && groups.last().is_some_and(|g| !g.is_empty()) {
                groups.push(Vec::new());
                bytes = 0;
            }
            bytes += file.1;
            if let Some(group) = groups.last_mut() {
                group.push(file);
            }
        }
        let mut merged_any = false;
        for (n, group) in groups.into_iter().enumerate() {
            if group.len() < 2 {
                report.files_after += group.len();
                continue;
            }
            let (outputs, rows, repeats) = merge(target, staging.as_ref(), &folder, &group, n)?;
            report.files_after += outputs;
            report.rows += rows;
            report.repeats_dropped += repeats;
            merged_any = true;
        }
        if merged_any {
            report.partitions += 1;
        }
    }
    Ok(report)
}

/// Reads one data file whole (a local file, or an object).
fn open(target: &Target, name: &str) -> io::Result<Bytes> {
    match &target.destination {
        Destination::Local(dir) => Ok(Bytes::from(fs::read(dir.join(name))?)),
        Destination::Remote(remote) => Handle::current()
            .block_on(remote.get(name))?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_owned())),
    }
}

/// The key that makes a row unique: (`id`, `_synced_at`, `_seq`).
fn row_keys(batch: &RecordBatch) -> Option<Vec<(String, i64, i64)>> {
    let id = batch.column_by_name("id")?.as_string_opt::<i32>()?;
    let synced = batch
        .column_by_name("_synced_at")?
        .as_primitive_opt::<TimestampMillisecondType>()?;
    let seq = batch
        .column_by_name("_seq")?
        .as_primitive_opt::<Int64Type>()?;
    Some(
        (0..batch.num_rows())
            .map(|i| {
                (
                    if id.is_null(i) {
                        String::new()
                    } else {
                        id.value(i).to_owned()
                    },
                    synced.value(i),
                    seq.value(i),
                )
            })
            .collect(),
    )
}

/// Merges `group` (files of one partition, one schema) into one file; files of another
/// schema are left as they are. Returns (files now standing for the group, rows kept,
/// repeats dropped).
fn merge(
    target: &Target,
    staging: Option<&Staging>,
    folder: &str,
    group: &[FileRef],
    n: usize,
) -> io::Result<(usize, u64, u64)> {
    let name = format!(
        "part-{}-c{:06x}-{n:05}.parquet",
        crate::protocol::now_ms(),
        rand::random::<u32>() & 0xff_ffff
    );
    let tmp_dir = match (&target.destination, staging) {
        (Destination::Local(dir), _) => dir.join(folder),
        (Destination::Remote(_), Some(staging)) => staging.path().to_owned(),
        (Destination::Remote(_), None) => return Err(io::Error::other("no staging folder")),
    };
    let tmp = tmp_dir.join(format!(".part-c-{name}.tmp"));
    let mut writer: Option<(SchemaRef, ArrowWriter<File>)> = None;
    let mut seen: HashSet<(String, i64, i64)> = HashSet::new();
    let (mut merged, mut kept_apart, mut rows, mut repeats) = (Vec::new(), 0, 0u64, 0u64);
    for (file, _) in group {
        let reader = ParquetRecordBatchReaderBuilder::try_new(open(target, file)?)
            .map_err(io::Error::other)?;
        let schema = reader.schema().clone();
        if writer.as_ref().is_some_and(|(s, _)| *s != schema) {
            kept_apart += 1;
            continue;
        }
        let (_, out) = match &mut writer {
            Some(w) => w,
            None => {
                let out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)?;
                let arrow = ArrowWriter::try_new(out, schema.clone(), Some(writer_properties()))
                    .map_err(io::Error::other)?;
                writer.insert((schema.clone(), arrow))
            }
        };
        for batch in reader.build().map_err(io::Error::other)? {
            let batch = batch.map_err(io::Error::other)?;
            let batch = match row_keys(&batch) {
                Some(keys) => {
                    let keep: BooleanArray =
                        keys.into_iter().map(|k| Some(seen.insert(k))).collect();
                    let kept = arrow::compute::filter_record_batch(&batch, &keep)
                        .map_err(io::Error::other)?;
                    repeats += (batch.num_rows() - kept.num_rows()) as u64;
                    kept
                }
                None => batch,
            };
            rows += batch.num_rows() as u64;
            out.write(&batch).map_err(io::Error::other)?;
        }
        merged.push(file.clone());
    }
    let Some((_, writer)) = writer else {
        return Ok((group.len(), 0, 0));
    };
    let file = writer.into_inner().map_err(io::Error::other)?;
    file.sync_all()?;
    drop(file);
    let relative = format!("{folder}/{name}");
    match &target.destination {
        Destination::Local(dir) => {
            let path = dir.join(&relative);
            fs::rename(&tmp, &path)?;
            File::open(dir.join(folder))?.sync_all()?;
            for file in &merged {
                match fs::remove_file(dir.join(file)) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Destination::Remote(remote) => {
            upload_then_delete(remote, &tmp, &relative, &merged)?;
        }
    }
    Ok((1 + kept_apart, rows, repeats))
}

fn upload_then_delete(
    remote: &Arc<Remote>,
    local: &Path,
    relative: &str,
    merged: &[String],
) -> io::Result<()> {
    let handle = Handle::current();
    handle.block_on(remote.upload(local, relative))?;
    fs::remove_file(local)?;
    for file in merged {
        handle.block_on(remote.delete(file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Sink;
    use crate::sinks::parquet::{Options, ParquetFolder};
    use serde_json::json;

    fn rows(dir: &Path) -> Vec<(String, i64, i64)> {
        let target = local(dir);
        let mut out = Vec::new();
        for files in partitions(&target).unwrap().values() {
            for (file, _) in files {
                let reader = ParquetRecordBatchReaderBuilder::try_new(open(&target, file).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
                for batch in reader {
                    out.extend(row_keys(&batch.unwrap()).unwrap());
                }
            }
        }
        out.sort();
        out
    }

    fn local(dir: &Path) -> Target {
        Target {
            destination: Destination::Local(dir.to_owned()),
            shard: None,
            options: Options::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn merges_small_files_keeping_every_row_and_drops_exact_repeats() {
        let dir = tempfile::tempdir().unwrap();
        for run in 0..5 {
            let mut sink = ParquetFolder::create(dir.path(), Options::default()).unwrap();
            let records: Vec<String> = (0..3)
                .map(|i| {
                    json!({"id": format!("cus_{run}_{i}"), "updated": 1_700_000_000 + run})
                        .to_string()
                })
                .collect();
            tokio::task::block_in_place(|| {
                sink.records("customers", &records).unwrap();
                sink.finish().unwrap();
            });
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let before = rows(dir.path());
        assert_eq!(before.len(), 15);
        let files = partitions(&local(dir.path())).unwrap()["customers"].clone();
        assert_eq!(files.len(), 5);
        // A compaction that died after its rename, before deleting: a repeat of a file.
        let copy = dir.path().join("customers/part-9-copy-00001.parquet");
        fs::copy(dir.path().join(&files[0].0), &copy).unwrap();
        assert_eq!(rows(dir.path()).len(), 18);
        let report = compact(&local(dir.path()), 1).await.unwrap();
        assert_eq!(report.files_before, 6);
        assert_eq!(report.files_after, 1);
        assert_eq!(report.repeats_dropped, 3);
        assert_eq!(rows(dir.path()), before, "the same rows, each once");
        let again = compact(&local(dir.path()), 1).await.unwrap();
        assert_eq!((again.files_before, again.files_after), (1, 1));
    }
}
