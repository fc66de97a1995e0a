//! The file system: a passthrough of the backing directory, each FUSE operation done on
//! the backing path or open file (`ops.rs`), except that syncs are slow ([`crate::sync`]).
//!
//! Invariants:
//! - Every answer is the backing file system's: attributes from its real `stat`, errors
//!   as its errno (ENOENT, EEXIST, ENOTEMPTY, EACCES ...). Nothing the kernel sends
//!   (names, offsets, sizes, flags) can make it panic: a value out of range is EINVAL.
//! - Page cache coherence: files open without `direct_io` and without `keep_cache`, and
//!   writes are written through at once (no writeback cache), so the kernel's page cache
//!   holds what the backing file holds: a read-only `MAP_SHARED` mapping sees what a
//!   `pwrite` on another descriptor wrote, as bbolt needs.
//! - O_APPEND is left to the kernel, which sends each write at the end it knows; the
//!   backing file is opened without it, so a write lands at the offset the kernel chose.
//! - Locks (flock, POSIX) are the kernel's own: the file system does not ask for them, so
//!   the kernel keeps them locally, per open file description, as on a local disk.
//! - Entries and attributes may be cached for [`TTL`]; only this mount changes the backing
//!   directory while it is mounted.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::attr::{self, TTL};
use crate::handles::Handles;
use crate::inodes::Inodes;
use crate::sync::Syncer;

/// The passthrough of one backing directory.
pub struct SlowFs {
    pub(crate) inodes: Inodes,
    pub(crate) handles: Handles,
    syncer: Syncer,
}

impl SlowFs {
    /// Serves `root` (a directory); every sync waits `delay`.
    pub fn new(root: PathBuf, delay: Duration) -> io::Result<SlowFs> {
        let meta = fs::metadata(&root)?;
        if !meta.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(SlowFs {
            inodes: Inodes::new(root, attr::key(&meta)),
            handles: Handles::default(),
            syncer: Syncer::start(delay),
        })
    }

    /// The count of syncs done through the delay.
    pub fn synced(&self) -> Arc<AtomicU64> {
        self.syncer.count()
    }
}

/// Replies `result` to `reply` with `ok` or the error.
macro_rules! answer {
    ($reply:expr, $result:expr, |$v:pat_param| $ok:expr) => {
        match $result {
            Ok($v) => $ok,
            Err(e) => $reply.error(e),
        }
    };
}

impl Filesystem for SlowFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self.inodes.child(parent, name).and_then(|p| self.entry(&p));
        answer!(reply, found, |a| reply.entry(&TTL, &a, Generation(0)));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inodes.forget(ino, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let found = self.stat(ino, fh);
        answer!(reply, found, |m| reply.attr(&TTL, &attr::attr(ino.0, &m)));
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let done = self.set_attr(ino, fh, mode, uid, gid, size, atime, mtime);
        answer!(reply, done, |a| reply.attr(&TTL, &a));
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = self
            .inodes
            .path(ino)
            .and_then(|p| fs::read_link(p).map_err(Errno::from));
        answer!(reply, target, |t| reply.data(t.as_os_str().as_bytes()));
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        // The kernel has applied the caller's umask to `mode`; this process's is 0.
        let made = self.inodes.child(parent, name).and_then(|p| {
            fs::DirBuilder::new().mode(mode & 0o7777).create(&p)?;
            self.entry(&p)
        });
        answer!(reply, made, |a| reply.entry(&TTL, &a, Generation(0)));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        answer!(reply, self.remove(parent, name, false), |()| reply.ok());
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        answer!(reply, self.remove(parent, name, true), |()| reply.ok());
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let made = self.inodes.child(parent, link_name).and_then(|p| {
            std::os::unix::fs::symlink(target, &p)?;
            self.entry(&p)
        });
        answer!(reply, made, |a| reply.entry(&TTL, &a, Generation(0)));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let done = self.rename_entry((parent, name), (newparent, newname), flags);
        answer!(reply, done, |()| reply.ok());
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let made = self.inodes.path(ino).and_then(|from| {
            let to = self.inodes.child(newparent, newname)?;
            fs::hard_link(from, &to)?;
            self.entry(&to)
        });
        answer!(reply, made, |a| reply.entry(&TTL, &a, Generation(0)));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let opened = self
            .inodes
            .path(ino)
            .and_then(|p| self.open_backing(&p, flags.0, None))
            .map(|file| self.handles.open(ino.0, file, None));
        // No FOPEN_DIRECT_IO, no FOPEN_KEEP_CACHE: see the module's doc.
        answer!(reply, opened, |fh| reply.opened(fh, FopenFlags::empty()));
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        answer!(reply, self.read_at(fh, offset, size), |d| reply.data(&d));
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let written = self.handles.file(fh).and_then(|f| {
            let n = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
            f.write_all_at(data, offset)?;
            Ok(n)
        });
        answer!(reply, written, |n| reply.written(n));
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Writes are written through as they come: nothing is held to flush.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.handles.release(fh);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.handles.file(fh) {
            Ok(file) => self.syncer.sync(file, datasync, reply),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        answer!(reply, self.open_dir(ino), |fh| reply
            .opened(fh, FopenFlags::empty()));
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listing = match self.handles.listing(fh) {
            Ok(listing) => listing,
            Err(e) => return reply.error(e),
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, entry) in listing.iter().enumerate().skip(skip) {
            // The offset of an entry is where the next listing starts.
            if reply.add(INodeNo(entry.ino), i as u64 + 1, entry.kind, &entry.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.handles.release(fh);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.handles.file(fh) {
            Ok(dir) => self.syncer.sync(dir, datasync, reply),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        answer!(reply, self.statfs_of(ino), |s| reply.statfs(
            s.blocks(),
            s.blocks_free(),
            s.blocks_available(),
            s.files(),
            s.files_free(),
            u32::try_from(s.block_size()).unwrap_or(4096),
            u32::try_from(s.name_max()).unwrap_or(255),
            u32::try_from(s.fragment_size()).unwrap_or(4096),
        ));
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        answer!(reply, self.check_access(ino, mask), |()| reply.ok());
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let made = self.create_file(parent, name, mode, flags);
        answer!(reply, made, |(a, fh)| reply.created(
            &TTL,
            &a,
            Generation(0),
            fh,
            FopenFlags::empty()
        ));
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let done = self.allocate(fh, offset, length, mode);
        answer!(reply, done, |()| reply.ok());
    }
}
