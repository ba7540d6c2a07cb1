//! The newest segment's name: given once its header is on disk, off the writer's thread.
//!
//! The recovery rule needs every segment name on disk to have a valid header behind it, so
//! a segment file is made under a temporary name and renamed once its header is synced. A
//! buffered ledger's roll used to do that sync itself, and the sync waited for the disk's
//! cache flush behind all the writeback in flight: most rolls took ~0.6 ms, but some 10-180 ms
//! (measured on the project's VM, 8 of 191 rolls in one criterion run), with the writer
//! stopped. Now a roll writes the header, hands the file to [`Naming`] and goes on writing
//! into it under its temporary name; a background thread syncs it and renames it. Whoever
//! needs the name on disk first does that work instead (and so waits for it): the next roll,
//! a sync (`Ledger::sync`, a synced write), and the ledger's drop.
//!
//! Until then the file keeps its temporary name, and whoever looks for the newest segment
//! in the directory takes a temporary file whose header is valid, of this ledger, and based
//! after every named segment, for it:
//! - readers in this process never look (they have the segment);
//! - readers in other processes find it when the head passes the named segments (`follow`),
//!   and read it where it is;
//! - open after a crash adopts it: syncs it and gives it its name. A header that never
//!   reached the disk whole (a power loss) does not decode, and the file goes like any
//!   leftover; its records were never synced.

use std::io;
use std::sync::Arc;

use super::segment::Segment;
use crate::storage::Storage;
use crate::sync::{lock, Mutex};

/// A segment the writer rolled to, still under its temporary name.
pub(super) struct Unnamed {
    /// The temporary name the file has now.
    pub(super) tmp: String,
    pub(super) segment: Arc<Segment>,
}

/// The segment waiting for its name, if any (at most one: a roll names the last one first).
pub(super) struct Naming {
    storage: Arc<dyn Storage>,
    /// Held through a whole naming, so that whoever asks for it returns once it is done.
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    unnamed: Option<Unnamed>,
    /// Set when a naming failed: a failed `fdatasync` is reported once, so a retry could
    /// "succeed" and name a file whose header never reached the disk. Every later naming
    /// fails too (the ledger is poisoned by then). The file is left to the next open, which
    /// syncs it again through a new descriptor: a disk that lost the header for good cannot
    /// be told apart from one that did not, there or anywhere else.
    failed: bool,
}

impl Naming {
    pub(super) fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            slot: Mutex::new(Slot::default()),
        }
    }

    /// Takes a segment just rolled to, whose header is written but not synced. The previous
    /// one must be named already ([`name`](Self::name)).
    pub(super) fn defer(&self, unnamed: Unnamed) {
        let mut slot = lock(&self.slot);
        debug_assert!(
            slot.unnamed.is_none(),
            "a roll names the previous segment first"
        );
        slot.unnamed = Some(unnamed);
    }

    /// Syncs the unnamed segment (its header, and whatever is written in it), renames it and
    /// syncs the directory; nothing if every segment is named. Returns once that is done,
    /// also when another thread is doing it, with the segment if this call synced it (its
    /// writes so far are durable). On an error (the caller poisons the ledger) this and every
    /// later call fail; the file may have its name already (a failed directory sync).
    ///
    /// The directory sync makes the name durable before the next segment can be made and
    /// rolled to (a roll asks for this first): a power loss never finds two segments under
    /// temporary names, only the newest, so open has one candidate to adopt.
    pub(super) fn name(&self) -> io::Result<Option<Arc<Segment>>> {
        let mut slot = lock(&self.slot);
        let Some(unnamed) = &slot.unnamed else {
            return Ok(None);
        };
        if slot.failed {
            return Err(io::Error::other(
                "an earlier attempt to name the newest segment failed",
            ));
        }
        let named = unnamed
            .segment
            .mapping
            .region()
            .sync()
            .and_then(|()| self.storage.rename(&unnamed.tmp, &unnamed.segment.name))
            .and_then(|()| self.storage.sync_dir());
        if let Err(e) = named {
            slot.failed = true;
            return Err(e);
        }
        tracing::debug!(segment = %unnamed.segment.name, "segment named");
        Ok(slot.unnamed.take().map(|unnamed| unnamed.segment))
    }
}
