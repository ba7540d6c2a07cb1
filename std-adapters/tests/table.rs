//! The positions table through its public API: quasar's table behaviour and its pinned `Range`
//! cases (with bug 2 fixed: a first position of 0 counts), persistence, compaction, the
//! directory lock, recovery of a damaged log, and power loss and failed syncs on the
//! simulated storage.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use ringledger::core::segment::{FileHeader, Writer};
use ringledger::storage::sim::SimStorage;
use ringledger::storage::{DirStorage, Durability, Storage};
use ringledger::table::*;

mod support;
use support::Rng;

fn open(dir: &Path) -> Table {
    Table::open(dir, TableConfig::default()).unwrap()
}

fn entries(pairs: &[(&str, &[u64])]) -> BTreeMap<String, Vec<u64>> {
    pairs
        .iter()
        .map(|(name, positions)| (name.to_string(), positions.to_vec()))
        .collect()
}

/// The table's files in `dir` (the lock file aside), sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "LOCK")
        .collect();
    names.sort();
    names
}

/// The one log file in `dir`.
fn log_file(dir: &Path) -> PathBuf {
    let logs: Vec<String> = files(dir)
        .into_iter()
        .filter(|name| name.ends_with(".seg"))
        .collect();
    assert_eq!(logs.len(), 1, "one log file: {logs:?}");
    dir.join(&logs[0])
}

/// Offset of the last non-zero byte of a log file: inside its last record.
fn last_written_byte(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).unwrap()
}

#[test]
fn set_get_delete_all() {
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path());
    table.set("foo", &[1, 2, 3]).unwrap();
    table.set("bar", &[4]).unwrap();
    assert_eq!(table.get("foo").unwrap(), [1, 2, 3]);
    assert_eq!(
        table.all().unwrap(),
        entries(&[("bar", &[4]), ("foo", &[1, 2, 3])])
    );

    table.set("foo", &[7]).unwrap();
    assert_eq!(table.get("foo").unwrap(), [7]);

    table.delete("foo").unwrap();
    assert!(table.get("foo").unwrap().is_empty());
    table.delete("missing").unwrap();
    assert_eq!(table.all().unwrap(), entries(&[("bar", &[4])]));
}

#[test]
fn set_empty_is_a_no_op_and_get_missing_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path());
    assert!(table.get("nobody").unwrap().is_empty());
    table.set("a", &[1]).unwrap();
    table.set("a", &[]).unwrap();
    table.set("b", &[]).unwrap();
    assert_eq!(table.get("a").unwrap(), [1]);
    assert_eq!(table.all().unwrap(), entries(&[("a", &[1])]));
}

#[test]
fn range_covers_first_and_last_positions() {
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path());
    assert_eq!(table.range().unwrap(), None);

    // quasar's pinned cases: [0] -> (0, 0), [7] -> (7, 7), plus [5, 13] -> (5, 13).
    table.set("a", &[0]).unwrap();
    assert_eq!(table.range().unwrap(), Some((0, 0)));
    table.set("a", &[7]).unwrap();
    assert_eq!(table.range().unwrap(), Some((7, 7)));
    table.set("b", &[5, 13]).unwrap();
    assert_eq!(table.range().unwrap(), Some((5, 13)));

    table.delete("a").unwrap();
    table.delete("b").unwrap();
    assert_eq!(table.range().unwrap(), None);
}

#[test]
fn range_counts_a_first_position_of_zero() {
    // quasar's bug 2: the 0 was taken for "no minimum", giving (5, 9), and the cleaner then
    // deleted entries 1..=5 that consumer "a" had not read.
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path());
    table.set("a", &[0, 3]).unwrap();
    table.set("b", &[5, 9]).unwrap();
    assert_eq!(table.range().unwrap(), Some((0, 9)));
}

#[test]
fn everything_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path());
    table.set("a", &[0, 3]).unwrap();
    table.set("b", &[5, 9]).unwrap();
    table.set("c", &[1]).unwrap();
    table.set("a", &[4]).unwrap();
    table.delete("c").unwrap();
    let before = table.all().unwrap();
    drop(table);

    let table = open(dir.path());
    assert_eq!(table.all().unwrap(), before);
    assert_eq!(table.range().unwrap(), Some((4, 9)));
    // And it keeps logging after the reopen.
    table.set("d", &[2]).unwrap();
    drop(table);
    let table = open(dir.path());
    assert_eq!(table.get("d").unwrap(), [2]);
    assert_eq!(table.all().unwrap().len(), 3);
}

#[test]
fn an_empty_table_reopens_empty() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let table = open(dir.path());
    assert!(table.all().unwrap().is_empty());

    table.set("a", &[1]).unwrap();
    table.delete("a").unwrap();
    drop(table);
    let table = open(dir.path());
    assert!(table.all().unwrap().is_empty());
    assert_eq!(table.range().unwrap(), None);
}

#[test]
fn compaction_keeps_the_log_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let config = TableConfig::default();
    let table = Table::open(dir.path(), config).unwrap();
    let names = ["alpha", "beta", "gamma", "delta", "epsilon"];
    for i in 0..10_000u64 {
        let name = names[(i % 5) as usize];
        table.set(name, &[i, i + 2, i + 5]).unwrap();
        if i % 1000 == 999 {
            table.delete("gamma").unwrap();
        }
    }
    let expected = table.all().unwrap();
    assert_eq!(expected["epsilon"], [9999, 10_001, 10_004]);
    assert!(!expected.contains_key("gamma"));

    // 10 000 records of ~88 bytes would take ~880 KB; the log stays one file of the minimum
    // size.
    let log = log_file(dir.path());
    assert_eq!(
        fs::metadata(&log).unwrap().len(),
        config.min_capacity as u64
    );
    assert!(files(dir.path()).iter().all(|name| !name.ends_with(".tmp")));
    drop(table);

    let table = Table::open(dir.path(), config).unwrap();
    assert_eq!(table.all().unwrap(), expected);
}

#[test]
fn a_log_that_shrank_gets_a_smaller_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = TableConfig {
        min_capacity: 4096,
        ..TableConfig::default()
    };
    let table = Table::open(dir.path(), config).unwrap();
    let positions: Vec<u64> = (0..100).collect();
    for i in 0..100 {
        table.set(&format!("consumer-{i}"), &positions).unwrap();
    }
    let big = fs::metadata(log_file(dir.path())).unwrap().len();
    assert!(big > 4096 * 4, "{big}");
    for i in 0..100 {
        table.delete(&format!("consumer-{i}")).unwrap();
    }
    for i in 0..50 {
        table.set("last", &[i]).unwrap();
    }
    let small = fs::metadata(log_file(dir.path())).unwrap().len();
    assert!(small < big, "{small} < {big}");
    drop(table);
    let table = Table::open(dir.path(), config).unwrap();
    assert_eq!(table.all().unwrap(), entries(&[("last", &[49])]));
}

#[test]
fn an_entry_larger_than_a_log_file_still_fits() {
    let dir = tempfile::tempdir().unwrap();
    let config = TableConfig {
        min_capacity: 4096,
        ..TableConfig::default()
    };
    let table = Table::open(dir.path(), config).unwrap();
    table.set("small", &[1]).unwrap();
    let big: Vec<u64> = (0..10_000).collect();
    table.set("big", &big).unwrap();
    table.set("small", &[2]).unwrap();
    drop(table);
    let table = Table::open(dir.path(), config).unwrap();
    assert_eq!(table.get("big").unwrap(), big);
    assert_eq!(table.get("small").unwrap(), [2]);
}

#[test]
fn names_have_a_length_limit() {
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path());
    let long = "x".repeat(MAX_NAME_LEN + 1);
    assert!(matches!(
        table.set(&long, &[1]),
        Err(TableError::NameTooLong { len }) if len == MAX_NAME_LEN + 1
    ));
    let longest = "x".repeat(MAX_NAME_LEN);
    table.set(&longest, &[1]).unwrap();
    assert_eq!(table.get(&longest).unwrap(), [1]);
}

#[test]
fn a_second_open_is_locked_while_the_first_lives() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    first.set("a", &[1]).unwrap();
    let second = Table::open(dir.path(), TableConfig::default());
    assert!(matches!(second, Err(TableError::Locked)), "{second:?}");
    drop(first);
    let second = open(dir.path());
    assert_eq!(second.get("a").unwrap(), [1]);
}

#[test]
fn writers_on_several_threads() {
    let dir = tempfile::tempdir().unwrap();
    let config = TableConfig {
        min_capacity: 4096,
        ..TableConfig::default()
    };
    let table = Arc::new(Table::open(dir.path(), config).unwrap());
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let table = Arc::clone(&table);
            thread::spawn(move || {
                for i in 0..500 {
                    table.set(&format!("t{t}"), &[i, i + t]).unwrap();
                    let _ = table.range().unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let expected = entries(&[
        ("t0", &[499, 499]),
        ("t1", &[499, 500]),
        ("t2", &[499, 501]),
        ("t3", &[499, 502]),
    ]);
    assert_eq!(table.all().unwrap(), expected);
    drop(table);
    assert_eq!(
        Table::open(dir.path(), config).unwrap().all().unwrap(),
        expected
    );
}

#[test]
fn a_garbled_tail_is_cut_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path());
    table.set("a", &[1]).unwrap();
    table.set("b", &[2, 3]).unwrap();
    table.set("c", &[u64::MAX]).unwrap();
    drop(table);

    // An append torn by a crash: the last record's payload did not all reach the file.
    let log = log_file(dir.path());
    let mut bytes = fs::read(&log).unwrap();
    let last = last_written_byte(&bytes);
    bytes[last] ^= 0xFF;
    fs::write(&log, &bytes).unwrap();

    let table = open(dir.path());
    assert_eq!(
        table.all().unwrap(),
        entries(&[("a", &[1]), ("b", &[2, 3])])
    );
    // The cut is reported, not silent.
    let (file, _, damage) = table.recovery().expect("a cut is reported");
    assert!(file.ends_with(".seg"), "{file}");
    assert_eq!(*damage, ringledger::core::segment::Damage::TornTail);
    // The cut was zeroed (and synced): the bytes after the last good record are gone.
    assert!(fs::read(&log).unwrap()[last - 7..].iter().all(|&b| b == 0));
    table.set("d", &[4]).unwrap();
    drop(table);
    let table = open(dir.path());
    assert_eq!(
        table.all().unwrap(),
        entries(&[("a", &[1]), ("b", &[2, 3]), ("d", &[4])])
    );
    assert!(table.recovery().is_none());
}

#[test]
fn a_truncated_log_is_cut_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path());
    table.set("a", &[1]).unwrap();
    table.set("b", &[2, 3]).unwrap();
    table.set("c", &[u64::MAX]).unwrap();
    drop(table);

    // The file ends inside the last record.
    let log = log_file(dir.path());
    let last = last_written_byte(&fs::read(&log).unwrap());
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(last as u64 - 4)
        .unwrap();

    let table = open(dir.path());
    assert_eq!(
        table.all().unwrap(),
        entries(&[("a", &[1]), ("b", &[2, 3])])
    );
    // The short file could not take appends: a full-size one replaced it.
    let rewritten = log_file(dir.path());
    assert_ne!(rewritten, log);
    assert_eq!(fs::metadata(&rewritten).unwrap().len(), 64 * 1024);
    table.set("d", &[4]).unwrap();
    drop(table);
    let table = open(dir.path());
    assert_eq!(
        table.all().unwrap(),
        entries(&[("a", &[1]), ("b", &[2, 3]), ("d", &[4])])
    );
}

#[test]
fn a_bad_magic_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path());
    table.set("a", &[1]).unwrap();
    drop(table);
    let log = log_file(dir.path());
    let mut bytes = fs::read(&log).unwrap();
    bytes[..8].copy_from_slice(b"NOTALOG!");
    fs::write(&log, &bytes).unwrap();

    let err = Table::open(dir.path(), TableConfig::default()).unwrap_err();
    assert!(matches!(err, TableError::BadFile { .. }), "{err:?}");
    let message = err.to_string();
    let name = log.file_name().unwrap().to_str().unwrap();
    assert!(message.contains(name), "{message}");
    assert!(message.contains("bad magic"), "{message}");
    // Nothing was touched.
    assert_eq!(fs::read(&log).unwrap(), bytes);
}

#[test]
fn a_record_that_is_no_table_operation_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let header = FileHeader {
        base_seq: 1,
        ledger_id: 1,
        salt: 99,
        capacity: 4096,
        created_ns: 0,
    };
    let mut image = vec![0u8; 4096];
    let mut writer = Writer::create(&mut image, &header, 1024).unwrap();
    writer.append(1, 0, 1, &[3, 0, 0, 0, b'a']).unwrap(); // a set without positions
    fs::write(dir.path().join("00000000000000000001.seg"), &image).unwrap();
    let err = Table::open(dir.path(), TableConfig::default()).unwrap_err();
    assert!(matches!(err, TableError::BadFile { .. }), "{err:?}");

    let mut image = vec![0u8; 4096];
    let mut writer = Writer::create(&mut image, &header, 1024).unwrap();
    writer.append(1, 0, 7, b"event").unwrap(); // a ledger's record, tag 7
    fs::write(dir.path().join("00000000000000000001.seg"), &image).unwrap();
    let err = Table::open(dir.path(), TableConfig::default()).unwrap_err();
    assert!(err.to_string().contains("unknown record tag 7"), "{err}");
}

#[test]
fn leftovers_of_an_interrupted_compaction_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let config = TableConfig {
        min_capacity: 4096,
        ..TableConfig::default()
    };
    let table = Table::open(dir.path(), config).unwrap();
    for i in 0..200 {
        table.set("a", &[i]).unwrap();
    }
    drop(table);
    let log = log_file(dir.path());
    assert_ne!(
        log.file_name().unwrap(),
        "00000000000000000000.seg",
        "compacted at least once"
    );
    // An older log the compaction did not get to remove, and a new one it did not finish.
    fs::write(dir.path().join("00000000000000000000.seg"), vec![1u8; 4096]).unwrap();
    fs::write(dir.path().join("99999999999999999999.seg.tmp"), b"half").unwrap();

    let table = Table::open(dir.path(), config).unwrap();
    assert_eq!(table.get("a").unwrap(), [199]);
    assert_eq!(
        files(dir.path()),
        [log.file_name().unwrap().to_str().unwrap()]
    );
}

#[test]
fn table_is_send_sync_and_debug() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<Table>();
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path());
    table.set("a", &[1]).unwrap();
    assert!(format!("{table:?}").contains("Table"));
}

#[test]
fn open_in_takes_any_storage() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(DirStorage::new(dir.path()).unwrap());
    let table = Table::open_in(Arc::clone(&storage), TableConfig::default()).unwrap();
    table.set("a", &[1]).unwrap();
    assert!(matches!(
        Table::open_in(storage, TableConfig::default()),
        Err(TableError::Locked)
    ));
}

#[test]
fn synced_writes_survive_a_power_loss() {
    let config = TableConfig {
        durability: Durability::Synced,
        min_capacity: 4096,
        ..TableConfig::default()
    };
    let names = ["a", "b", "c", "d", "e"];
    for seed in 0..300u64 {
        let storage = SimStorage::new();
        let table = Table::open_in(Arc::new(storage.clone()), config).unwrap();
        let mut model = BTreeMap::new();
        let mut rng = Rng(seed);
        for _ in 0..rng.below(150) {
            let name = names[rng.below(5) as usize];
            if rng.below(4) == 0 {
                table.delete(name).unwrap();
                model.remove(name);
            } else {
                let start = rng.below(1000);
                let positions: Vec<u64> = (start..start + 1 + rng.below(20)).collect();
                table.set(name, &positions).unwrap();
                model.insert(name.to_string(), positions);
            }
        }
        let crashed = storage.crash(seed);
        drop(table);
        let table = Table::open_in(Arc::new(crashed), config)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(table.all().unwrap(), model, "seed {seed}");
    }
}

#[test]
fn buffered_writes_survive_a_crash_of_the_process() {
    let storage = SimStorage::new();
    let config = TableConfig {
        min_capacity: 4096,
        ..TableConfig::default()
    };
    let table = Table::open_in(Arc::new(storage.clone()), config).unwrap();
    for i in 0..300 {
        table.set(&format!("n{}", i % 7), &[i, i + 1]).unwrap();
    }
    let expected = table.all().unwrap();
    let table_after = Table::open_in(Arc::new(storage.snapshot()), config).unwrap();
    assert_eq!(table_after.all().unwrap(), expected);
}

#[test]
fn a_failed_sync_poisons_the_table_and_forgets_the_write() {
    let storage = SimStorage::new();
    let config = TableConfig {
        durability: Durability::Synced,
        ..TableConfig::default()
    };
    let table = Table::open_in(Arc::new(storage.clone()), config).unwrap();
    table.set("a", &[1]).unwrap();

    storage.fail_syncs(true);
    let err = table.set("b", &[2]).unwrap_err();
    assert!(matches!(err, TableError::Io { .. }), "{err:?}");
    storage.fail_syncs(false);
    assert!(matches!(table.set("c", &[3]), Err(TableError::Poisoned)));
    assert!(matches!(table.delete("a"), Err(TableError::Poisoned)));
    assert!(matches!(table.sync(), Err(TableError::Poisoned)));
    // Reads keep working, and never return what the failed sync may not have written.
    assert_eq!(table.get("a").unwrap(), [1]);
    assert!(table.get("b").unwrap().is_empty());
    assert_eq!(table.range().unwrap(), Some((1, 1)));
}

#[test]
fn a_failed_sync_on_demand_poisons_a_buffered_table() {
    let storage = SimStorage::new();
    let table = Table::open_in(Arc::new(storage.clone()), TableConfig::default()).unwrap();
    table.set("a", &[1]).unwrap();
    table.set("b", &[2]).unwrap();
    table.sync().unwrap();
    storage.fail_syncs(true);
    table.set("c", &[3]).unwrap();
    assert!(matches!(table.sync(), Err(TableError::Io { .. })));
    storage.fail_syncs(false);
    assert!(matches!(table.set("d", &[4]), Err(TableError::Poisoned)));
    assert_eq!(table.all().unwrap().len(), 3);
}

#[test]
fn a_compaction_that_cannot_sync_changes_nothing() {
    let storage = SimStorage::new();
    storage.fail_syncs(true);
    let table = Table::open_in(Arc::new(storage.clone()), TableConfig::default()).unwrap();
    // The first write creates the log file, which must be synced before it is renamed in.
    assert!(matches!(table.set("a", &[1]), Err(TableError::Io { .. })));
    assert!(table.get("a").unwrap().is_empty());
    assert!(
        storage.file_names().is_empty(),
        "{:?}",
        storage.file_names()
    );
    assert!(matches!(table.set("a", &[1]), Err(TableError::Poisoned)));
}

#[test]
fn a_full_disk_fails_a_compaction_without_poisoning() {
    let storage = SimStorage::new();
    let config = TableConfig {
        min_capacity: 4096,
        ..TableConfig::default()
    };
    let table = Table::open_in(Arc::new(storage.clone()), config).unwrap();
    table.set("a", &[0]).unwrap();
    // Room for the log file, not for the one a compaction writes next to it.
    storage.set_capacity(Some(4096 + 1024));
    let positions: Vec<u64> = (0..20).collect();
    let mut failed = None;
    for i in 0..100 {
        if let Err(e) = table.set(&format!("n{i}"), &positions) {
            failed = Some((i, e));
            break;
        }
    }
    let (i, err) = failed.expect("the log filled up");
    assert!(matches!(err, TableError::Io { .. }), "{err:?}");
    let name = format!("n{i}");
    assert!(table.get(&name).unwrap().is_empty(), "not applied");

    storage.set_capacity(None);
    table.set(&name, &positions).unwrap();
    let expected = table.all().unwrap();
    assert_eq!(expected.len(), i + 2);
    drop(table);
    let table = Table::open_in(Arc::new(storage.snapshot()), config).unwrap();
    assert_eq!(table.all().unwrap(), expected);
}

/// A read-only open next to a live writer: no lock taken (the writer keeps working), the
/// writer's entries visible, writes refused, and not a byte of the storage changed.
#[test]
fn a_read_only_open_sees_a_live_writers_table_and_changes_nothing() {
    let storage = SimStorage::new();
    let writer = Table::open_in(Arc::new(storage.clone()), TableConfig::default()).unwrap();
    writer.set("audit", &[3, 5]).unwrap();
    writer.set("ship", &[9]).unwrap();
    let before: Vec<(String, Option<Vec<u8>>)> = storage
        .file_names()
        .into_iter()
        .map(|n| (n.clone(), storage.contents(&n)))
        .collect();
    let reader = Table::open_read_only(Arc::new(storage.clone())).unwrap();
    assert_eq!(reader.get("audit").unwrap(), [3, 5]);
    assert_eq!(reader.range().unwrap(), Some((3, 9)));
    assert!(reader.recovery().is_none());
    assert!(matches!(reader.set("x", &[1]), Err(TableError::ReadOnly)));
    assert!(matches!(reader.delete("audit"), Err(TableError::ReadOnly)));
    assert!(matches!(reader.sync(), Err(TableError::ReadOnly)));
    let after: Vec<(String, Option<Vec<u8>>)> = storage
        .file_names()
        .into_iter()
        .map(|n| (n.clone(), storage.contents(&n)))
        .collect();
    assert_eq!(before, after);
    // The writer still holds its lock and writes on.
    assert!(matches!(
        Table::open_in(Arc::new(storage.clone()), TableConfig::default()),
        Err(TableError::Locked)
    ));
    writer.set("audit", &[6]).unwrap();
    drop(reader);
    assert_eq!(writer.get("audit").unwrap(), [6]);
    // An empty storage reads as an empty table.
    let empty = Table::open_read_only(Arc::new(SimStorage::new())).unwrap();
    assert!(empty.all().unwrap().is_empty());
}
