//! Every file the store opens, creates, maps, renames or removes, every directory it reads or
//! creates, and every write and fsync it makes go through here: one place to observe them
//! and to make the N-th one fail in tests ([`fault`], feature `fault-injection`), and the one place that holds `unsafe`
//! for mapping files (segments, and the capture files replay reads). Reads from a file already open (`pread`, a mapping) and `flock`
//! are left to the caller: they change nothing on disk.
//!
//! The primitives return [`io::Result`] and leave it to the caller to say which path an error
//! is about: the store names the file a user can act on, which is not always the one the
//! call was given (a failed rename names its destination). The composite operations, which
//! touch several paths, return a [`PathError`] that names the one that failed.

use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub use memmap2::{Mmap, MmapMut};
pub use std::fs::{DirEntry, File, Metadata, ReadDir};

#[cfg(feature = "fault-injection")]
pub mod fault;

/// The kinds of operation that change the disk, each of which a test can make fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// An open that may create the file.
    Create,
    /// A write, or a change of length.
    Write,
    /// An fsync of a file or directory, or an msync of a mapping.
    Fsync,
    /// A rename or a hard link.
    Rename,
    /// Removing a file or an empty directory.
    Unlink,
    Mkdir,
}

/// Where every operation of kind `op` asks whether it is the one to fail. Without the
/// `fault-injection` feature it is nothing, and compiles to nothing.
#[cfg(feature = "fault-injection")]
#[track_caller]
fn hook(op: Op) -> io::Result<()> {
    fault::check(op, std::panic::Location::caller())
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
fn hook(_: Op) -> io::Result<()> {
    Ok(())
}

/// Arms fault injection from `FLOWKEEP_FAULT` ([`fault`]); the error says what is wrong with
/// its value. Without the `fault-injection` feature the variable is ignored.
pub fn arm_faults_from_env() -> Result<(), String> {
    #[cfg(feature = "fault-injection")]
    return fault::arm_from_env();
    #[cfg(not(feature = "fault-injection"))]
    Ok(())
}

/// In fault injection's counting mode, prints what the command reached (see [`fault`]).
pub fn report_faults() {
    #[cfg(feature = "fault-injection")]
    fault::report();
}

/// An I/O error and the path it is about.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct PathError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl PathError {
    fn at(path: &Path) -> impl FnOnce(io::Error) -> PathError + '_ {
        move |source| PathError {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Mode of every file created here: flow logs are personal data, readable by the store's
/// owner and group (an auditor's, a backup's) and nobody else, whatever the umask (which can
/// only take bits away).
pub const FILE_MODE: u32 = 0o640;
/// Mode of every directory created here.
pub const DIR_MODE: u32 = 0o750;

/// Every file the store creates or writes is opened without following a symbolic link in its
/// last component: a `.lock` or `audit.log` replaced by a link must not make a root command
/// write through it. Such an open fails (ELOOP), and [`explain_link`] names the link.
const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// ELOOP from an open with [`NOFOLLOW`], said in words.
fn explain_link(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        io::Error::other(format!(
            "{} is a symbolic link; a store never follows one (remove it)",
            path.display()
        ))
    } else {
        e
    }
}

/// Whether `path` is a directory itself, not a symbolic link to one.
pub fn is_real_dir(path: &Path) -> bool {
    symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Run as root, a command's new file or directory is given to the owner of the directory it
/// is created in (the store's owner): a root `hold add` or `expire` must not leave files that
/// a capture running as `nobody` cannot write. Anyone else creates files as themselves.
fn adopt(path: &Path, file: Option<&File>) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::metadata(parent)?;
    let own = match file {
        Some(f) => f.metadata()?,
        None => std::fs::symlink_metadata(path)?,
    };
    if (own.uid(), own.gid()) == (dir.uid(), dir.gid()) {
        return Ok(());
    }
    let uid = Some(rustix::process::Uid::from_raw(dir.uid()));
    let gid = Some(rustix::process::Gid::from_raw(dir.gid()));
    match file {
        Some(f) => rustix::fs::fchown(f, uid, gid),
        None => rustix::fs::chown(path, uid, gid),
    }
    .map_err(io::Error::from)
}

/// Opens an existing file for reading.
pub fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Opens an existing file for reading and writing in place.
pub fn open_read_write(path: &Path) -> io::Result<File> {
    File::options().read(true).write(true).open(path)
}

/// Opens `path` with `opts` the way every store file is created or written: mode
/// [`FILE_MODE`], never through a symbolic link, given to the directory's owner when root.
fn open_store_file(path: &Path, opts: &mut std::fs::OpenOptions) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = opts
        .mode(FILE_MODE)
        .custom_flags(NOFOLLOW)
        .open(path)
        .map_err(|e| explain_link(path, e))?;
    adopt(path, Some(&f))?;
    Ok(f)
}

/// Creates a file for reading and writing that must not exist yet: the name is then ours
/// alone.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn create_new(path: &Path) -> io::Result<File> {
    hook(Op::Create)?;
    open_store_file(
        path,
        File::options().read(true).write(true).create_new(true),
    )
}

/// Creates a file for writing that must not exist yet, with permission bits `mode` (less the
/// umask) from the moment it exists: a secret written into it is never readable by others, not
/// even between a create and a chmod.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn create_new_with_mode(path: &Path, mode: u32) -> io::Result<File> {
    hook(Op::Create)?;
    use std::os::unix::fs::OpenOptionsExt;
    let f = File::options()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    adopt(path, Some(&f))?;
    Ok(f)
}

/// Opens a file for reading and writing, creating it if needed and keeping what it holds
/// (lock files, whose content only informs).
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn open_or_create(path: &Path) -> io::Result<File> {
    hook(Op::Create)?;
    open_store_file(
        path,
        File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
}

/// Opens a file for reading and appending (`O_APPEND`), creating it if needed.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn open_append(path: &Path) -> io::Result<File> {
    hook(Op::Create)?;
    open_store_file(path, File::options().read(true).append(true).create(true))
}

/// Creates a file for writing, or empties an existing one.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn create(path: &Path) -> io::Result<File> {
    hook(Op::Create)?;
    open_store_file(
        path,
        File::options().write(true).create(true).truncate(true),
    )
}

pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
}

pub fn read_to_string(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
}

pub fn metadata(path: &Path) -> io::Result<Metadata> {
    std::fs::metadata(path)
}

/// Metadata of the path itself, not of what a symbolic link there points to.
pub fn symlink_metadata(path: &Path) -> io::Result<Metadata> {
    std::fs::symlink_metadata(path)
}

pub fn file_metadata(file: &File) -> io::Result<Metadata> {
    file.metadata()
}

/// Whether anything is at `path` (following links); errors count as nothing.
pub fn exists(path: &Path) -> bool {
    metadata(path).is_ok()
}

/// Whether `path` is a directory (following links); errors count as no.
pub fn is_dir(path: &Path) -> bool {
    metadata(path).is_ok_and(|m| m.is_dir())
}

pub fn canonicalize(path: &Path) -> io::Result<PathBuf> {
    std::fs::canonicalize(path)
}

/// The entries of a directory, read as the iterator is advanced.
pub fn read_dir(dir: &Path) -> io::Result<ReadDir> {
    std::fs::read_dir(dir)
}

#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn create_dir(path: &Path) -> io::Result<()> {
    hook(Op::Mkdir)?;
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(DIR_MODE).create(path)?;
    adopt(path, None)
}

/// Creates `path` and the parents it lacks, each with [`DIR_MODE`] (and, run as root, each
/// given to the owner of the directory it was made in).
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    hook(Op::Mkdir)?;
    use std::os::unix::fs::DirBuilderExt;
    let missing: Vec<&Path> = path
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !exists(p))
        .collect();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)?;
    for p in missing.iter().rev() {
        adopt(p, None)?;
    }
    Ok(())
}

#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    hook(Op::Rename)?;
    std::fs::rename(from, to)
}

/// Gives the file `from` the second name `to`, failing (changing nothing) when `to` exists.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn hard_link(from: &Path, to: &Path) -> io::Result<()> {
    hook(Op::Rename)?;
    std::fs::hard_link(from, to)
}

#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn remove_file(path: &Path) -> io::Result<()> {
    hook(Op::Unlink)?;
    std::fs::remove_file(path)
}

/// Removes an empty directory (fails, changing nothing, while anything is inside).
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn remove_dir(path: &Path) -> io::Result<()> {
    hook(Op::Unlink)?;
    std::fs::remove_dir(path)
}

/// Writes all of `bytes` at the file's position (its end, when opened for appending).
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn write_all(mut file: &File, bytes: &[u8]) -> io::Result<()> {
    hook(Op::Write)?;
    file.write_all(bytes)
}

/// Writes all of `bytes` at `offset`, leaving the file's position alone.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    hook(Op::Write)?;
    file.write_all_at(bytes, offset)
}

#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn set_len(file: &File, len: u64) -> io::Result<()> {
    hook(Op::Write)?;
    file.set_len(len)
}

/// Makes a file's data and metadata durable (fsync).
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn sync(file: &File) -> io::Result<()> {
    hook(Op::Fsync)?;
    file.sync_all()
}

/// Makes a file's data durable (fdatasync): enough where only appended bytes changed.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn sync_data(file: &File) -> io::Result<()> {
    hook(Op::Fsync)?;
    file.sync_data()
}

/// Makes a directory's entries (created, renamed or removed files) durable.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    hook(Op::Fsync)?;
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes what a writable mapping holds back to its file, and waits for it (msync).
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn sync_map(map: &MmapMut) -> io::Result<()> {
    hook(Op::Fsync)?;
    map.flush()
}

/// Puts `bytes` in the file `name` of `dir` so that a reader never sees a partly written
/// file: writes and fsyncs them under the temporary name `tmp_name` (in `dir` too), renames
/// that over `name`, and fsyncs `dir`. The error names the temporary file when writing it
/// failed, the file when the rename did, `dir` (as given) when its fsync did.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn write_atomically(
    dir: &Path,
    tmp_name: &str,
    name: &str,
    bytes: &[u8],
) -> Result<(), PathError> {
    let tmp = dir.join(tmp_name);
    // No closures around the operations: they would hide the caller from fault injection.
    let f = create(&tmp).map_err(PathError::at(&tmp))?;
    write_all(&f, bytes).map_err(PathError::at(&tmp))?;
    sync(&f).map_err(PathError::at(&tmp))?;
    drop(f);
    let path = dir.join(name);
    rename(&tmp, &path).map_err(PathError::at(&path))?;
    sync_dir(dir).map_err(PathError::at(dir))
}

/// Writes `bytes` as `dir/name` unless that exists, so that a reader sees the whole file or
/// none and two writers racing keep the first one's: a temporary file (mode `mode`), fsynced,
/// hard-linked to `name` (which fails, changing nothing, when `name` exists), then removed.
/// `Ok(false)` when `name` existed already.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn write_new_atomically(
    dir: &Path,
    tmp_name: &str,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<bool, PathError> {
    let tmp = dir.join(tmp_name);
    let f = create_new_with_mode(&tmp, mode).map_err(PathError::at(&tmp))?;
    let mut linked = write_all(&f, bytes);
    if linked.is_ok() {
        linked = sync(&f);
    }
    drop(f);
    if linked.is_ok() {
        linked = hard_link(&tmp, &dir.join(name));
    }
    let _ = remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(dir).map_err(PathError::at(dir))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(PathError::at(&dir.join(name))(e)),
    }
}

/// Renames `from` to `to` and fsyncs the directory of `to`. The error names `to` when the
/// rename failed, the directory when its fsync did.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn rename_synced(from: &Path, to: &Path) -> Result<(), PathError> {
    rename(from, to).map_err(PathError::at(to))?;
    match to.parent() {
        Some(dir) => sync_dir(dir).map_err(PathError::at(dir)),
        None => Ok(()),
    }
}

/// Removes a file and fsyncs its directory. The error names the file when removing it
/// failed, the directory when its fsync did.
#[cfg_attr(feature = "fault-injection", track_caller)]
pub fn remove_synced(path: &Path) -> Result<(), PathError> {
    remove_file(path).map_err(PathError::at(path))?;
    match path.parent() {
        Some(dir) => sync_dir(dir).map_err(PathError::at(dir)),
        None => Ok(()),
    }
}

/// Maps a file for reading.
#[allow(unsafe_code)]
pub fn map_read(file: &File) -> io::Result<Mmap> {
    // SAFETY: only sealed segment files are mapped for reading (and, during recovery, a dead
    // writer's temporary file while the store lock keeps every writer away). They are written
    // once under a temporary name and renamed, never modified in place afterwards; every offset
    // read from the mapping is bounds-checked, so what the bytes say cannot cause out-of-bounds
    // access. A file truncated by another process while mapped would raise SIGBUS: the store's
    // contract is that sealed segments are only ever deleted whole (unlink keeps the mapping
    // valid).
    unsafe { Mmap::map(file) }
}

/// Maps a capture file for reading, and tells the kernel it is read front to back.
#[allow(unsafe_code)]
pub fn map_capture(file: &File) -> io::Result<Mmap> {
    // SAFETY: the map is read-only and lives as long as the FileSource that holds it, and the
    // readers bounds-check every length the file gives. If another process truncates the file
    // while it is read, accessing the lost pages raises SIGBUS; capture files being replayed
    // are not rewritten in place, and reading them through read(2) instead would cost a copy
    // per packet on the hot path.
    let map = unsafe { Mmap::map(file) }?;
    #[cfg(unix)]
    {
        // Only a hint for read-ahead; reading works the same without it.
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Ok(map)
}

/// Maps a file for writing.
#[allow(unsafe_code)]
pub fn map_write(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the file was created by this writer with `create_new` under a temporary name that
    // no other writer can claim. Readers only `pread` it (never map it), and recovery, the only
    // other code that modifies temporary files, runs only while holding the store lock, which
    // this writer holds for its whole life. Only this writer resizes it, and it drops the mapping
    // before every resize and remaps afterwards.
    unsafe { MmapMut::map_mut(file) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_replaces_the_file_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "old").unwrap();
        write_atomically(d.path(), ".f.tmp", "f", b"new").unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("f")).unwrap(), "new");
        assert!(!d.path().join(".f.tmp").exists());
    }

    #[test]
    fn composite_errors_name_the_path_that_failed() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("missing");
        let e = write_atomically(&missing, ".f.tmp", "f", b"x").unwrap_err();
        assert_eq!(e.path, missing.join(".f.tmp"));
        let e = remove_synced(&missing).unwrap_err();
        assert_eq!(e.path, missing);
        assert_eq!(e.source.kind(), io::ErrorKind::NotFound);
        let e = rename_synced(&missing, &d.path().join("to")).unwrap_err();
        assert_eq!(e.path, d.path().join("to"));
        assert!(e
            .to_string()
            .starts_with(&d.path().join("to").display().to_string()));
    }
}
