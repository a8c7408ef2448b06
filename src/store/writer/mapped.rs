//! An open segment's temporary file, written through a memory mapping that grows as blocks
//! are added.

use super::{INITIAL_SEGMENT_BYTES, MAX_GROWTH_BYTES};
use crate::fs::{self, File};
use crate::store::block::BLOCK_HEADER_LEN;
use crate::store::StoreError;
use std::io::{self, Seek, SeekFrom};
use std::path::PathBuf;

/// The temporary file of an open segment and its writable mapping.
pub(super) struct MappedFile {
    pub(super) path: PathBuf,
    pub(super) file: File,
    pub(super) map: Option<fs::MmapMut>,
    cap: u64,
    pub(super) pos: u64,
}

impl MappedFile {
    pub(super) fn create(path: PathBuf, file: File) -> Result<MappedFile, StoreError> {
        let mut m = MappedFile {
            path,
            file,
            map: None,
            cap: 0,
            pos: 0,
        };
        m.grow_to(INITIAL_SEGMENT_BYTES)?;
        Ok(m)
    }

    /// Extends the file by writing zeros rather than `set_len`: the blocks are then really
    /// allocated, so a full disk shows up here as an error instead of as SIGBUS on a later write
    /// through the mapping.
    ///
    /// On failure the file is cut back to its old size and mapped again, so the blocks already
    /// written stay usable and a later call can try again (once space is back).
    fn grow_to(&mut self, new_cap: u64) -> Result<(), StoreError> {
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        self.map = None;
        let old_cap = self.cap;
        let extended = (|| -> io::Result<()> {
            self.file.seek(SeekFrom::Start(old_cap))?;
            let mut left = new_cap.saturating_sub(old_cap);
            while left > 0 {
                let n = left.min(ZEROS.len() as u64) as usize;
                fs::write_all(&self.file, &ZEROS[..n])?;
                left -= n as u64;
            }
            Ok(())
        })();
        if let Err(e) = extended {
            let restored = fs::set_len(&self.file, old_cap);
            if old_cap > 0 {
                self.map = fs::map_write(&self.file).ok();
            }
            let e = io::Error::new(
                e.kind(),
                format!("extending segment file from {old_cap} to {new_cap} bytes: {e}"),
            );
            restored.map_err(|r| StoreError::io(&self.path, r))?;
            return Err(StoreError::io(&self.path, e));
        }
        self.cap = new_cap;
        self.map = Some(fs::map_write(&self.file).map_err(|e| StoreError::io(&self.path, e))?);
        Ok(())
    }

    /// Makes sure `need` bytes fit, growing the file if not.
    fn reserve(&mut self, need: u64) -> Result<(), StoreError> {
        if need > self.cap || self.map.is_none() {
            let grown = self.cap + self.cap.clamp(INITIAL_SEGMENT_BYTES, MAX_GROWTH_BYTES);
            self.grow_to(grown.max(need))?;
        }
        Ok(())
    }

    fn slice_mut(&mut self, from: u64, to: u64) -> Result<&mut [u8], StoreError> {
        let path = &self.path;
        self.map
            .as_mut()
            .and_then(|m| m.get_mut(from as usize..to as usize))
            .ok_or_else(|| {
                StoreError::io(
                    path,
                    io::Error::other("segment mapping smaller than its file"),
                )
            })
    }

    /// Appends a block so that a reader of the file (after a crash, or concurrently through the
    /// page cache) finds either all of it or a zero block header: the payload goes first, the
    /// header last. Leaves `footer_room` bytes free after it, so sealing never needs more disk.
    pub(super) fn append_block(
        &mut self,
        block: &[u8],
        footer_room: u64,
    ) -> Result<u64, StoreError> {
        let len = block.len() as u64;
        let at = self.pos;
        self.reserve(at + len + footer_room)?;
        let split = BLOCK_HEADER_LEN.min(block.len());
        let (head, payload) = block.split_at(split);
        self.slice_mut(at + split as u64, at + len)?
            .copy_from_slice(payload);
        // Orders the payload stores before the header stores for other observers of the
        // mapping (the crc32c in the header is what a reader finally trusts).
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.slice_mut(at, at + split as u64)?.copy_from_slice(head);
        self.pos = at + len;
        Ok(at)
    }

    /// Copies `bytes` to the end of what is written; returns the offset it was written at.
    pub(super) fn append(&mut self, bytes: &[u8]) -> Result<u64, StoreError> {
        let at = self.pos;
        let need = at + bytes.len() as u64;
        self.reserve(need)?;
        self.slice_mut(at, need)?.copy_from_slice(bytes);
        self.pos = need;
        Ok(at)
    }
}
