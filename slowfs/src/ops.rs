//! The operations behind the [`Filesystem`](fuser::Filesystem) impl (`fs.rs`), each
//! done on the backing directory and returning the backing errno, so the impl only
//! replies.
//!
//! Invariants: the ones of `fs.rs` (every answer the backing file system's; nothing the
//! kernel sends makes them panic); a name is turned into a path only through
//! [`Inodes::child`](crate::inodes::Inodes::child); every name made or removed here is
//! told to the inode table in the same call, after the backing call succeeded.

use std::ffi::OsStr;
use std::fs::{self, File, Metadata, Permissions};
use std::io;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fuser::{AccessFlags, Errno, FileAttr, FileHandle, FileType, INodeNo, RenameFlags, TimeOrNow};
use nix::fcntl::{FallocateFlags, OFlag, AT_FDCWD};
use nix::sys::stat::Mode;

use crate::attr;
use crate::fs::SlowFs;
use crate::handles::DirEntry;

pub(crate) type Result<T> = std::result::Result<T, Errno>;

/// A nix errno as the kernel's.
pub(crate) fn nix_errno(e: nix::errno::Errno) -> Errno {
    Errno::from_i32(e as i32)
}

/// The open flags passed on to the backing file: the access mode, and those that change
/// what a write means. O_APPEND is not (see `fs.rs`'s doc), nor O_DIRECT (the backing
/// file system may refuse it; the FUSE side has its own page cache anyway).
const PASSED_FLAGS: i32 = libc::O_ACCMODE | libc::O_TRUNC | libc::O_SYNC | libc::O_DSYNC;

impl SlowFs {
    /// The entry of `path`, counting one lookup of it.
    pub(crate) fn entry(&self, path: &Path) -> Result<FileAttr> {
        let meta = fs::symlink_metadata(path)?;
        let id = self.inodes.remember(path, attr::key(&meta));
        Ok(attr::attr(id, &meta))
    }

    /// The backing `stat` of `ino`: through `fh` when given, else its path, else (all its
    /// names removed) any handle it has open.
    pub(crate) fn stat(&self, ino: INodeNo, fh: Option<FileHandle>) -> Result<Metadata> {
        if let Some(file) = fh.and_then(|fh| self.handles.file(fh).ok()) {
            return Ok(file.metadata()?);
        }
        match self.inodes.path(ino) {
            Ok(path) => Ok(fs::symlink_metadata(path)?),
            Err(e) => Ok(self.handles.any_of(ino.0).ok_or(e)?.metadata()?),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_attr(
        &self,
        ino: INodeNo,
        fh: Option<FileHandle>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
    ) -> Result<FileAttr> {
        let file = fh.and_then(|fh| self.handles.file(fh).ok());
        let path = || self.inodes.path(ino);
        if let Some(mode) = mode {
            let perm = Permissions::from_mode(mode & 0o7777);
            match &file {
                Some(f) => f.set_permissions(perm)?,
                None => {
                    let path = path()?;
                    if fs::symlink_metadata(&path)?.file_type().is_symlink() {
                        return Err(Errno::EOPNOTSUPP);
                    }
                    fs::set_permissions(path, perm)?;
                }
            }
        }
        if uid.is_some() || gid.is_some() {
            match &file {
                Some(f) => std::os::unix::fs::fchown(&**f, uid, gid)?,
                None => std::os::unix::fs::lchown(path()?, uid, gid)?,
            }
        }
        if let Some(size) = size {
            match &file {
                Some(f) => f.set_len(size)?,
                None => {
                    let len = libc::off_t::try_from(size).map_err(|_| Errno::EFBIG)?;
                    nix::unistd::truncate(&path()?, len).map_err(nix_errno)?;
                }
            }
        }
        if atime.is_some() || mtime.is_some() {
            let at = match &file {
                Some(_) => PathBuf::new(),
                None => path()?,
            };
            attr::set_times(file.as_deref(), &at, atime, mtime)?;
        }
        Ok(attr::attr(ino.0, &self.stat(ino, fh)?))
    }

    /// Opens the backing `path` with the passed part of `flags`; creates it with `mode`
    /// when `create` (exclusively when the flags say O_EXCL).
    pub(crate) fn open_backing(
        &self,
        path: &Path,
        flags: i32,
        create: Option<u32>,
    ) -> Result<File> {
        let mut oflag = OFlag::from_bits_truncate(flags & PASSED_FLAGS) | OFlag::O_CLOEXEC;
        let mut perm = Mode::empty();
        if let Some(mode) = create {
            oflag |= OFlag::O_CREAT | OFlag::from_bits_truncate(flags & libc::O_EXCL);
            perm = Mode::from_bits_truncate(mode & 0o7777);
        }
        let fd = nix::fcntl::open(path, oflag, perm).map_err(nix_errno)?;
        Ok(File::from(fd))
    }

    pub(crate) fn create_file(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(FileAttr, FileHandle)> {
        let path = self.inodes.child(parent, name)?;
        let file = self.open_backing(&path, flags, Some(mode))?;
        let meta = file.metadata()?;
        let id = self.inodes.remember(&path, attr::key(&meta));
        let fh = self.handles.open(id, file, None);
        Ok((attr::attr(id, &meta), fh))
    }

    pub(crate) fn open_dir(&self, ino: INodeNo) -> Result<FileHandle> {
        let path = self.inodes.path(ino)?;
        let dir = File::open(&path)?;
        let own = dir.metadata()?.ino();
        let up = match path.parent() {
            Some(parent) if ino != INodeNo::ROOT => {
                fs::symlink_metadata(parent).map_or(own, |m| m.ino())
            }
            _ => own,
        };
        let mut listing = vec![
            DirEntry {
                ino: own,
                kind: FileType::Directory,
                name: ".".into(),
            },
            DirEntry {
                ino: up,
                kind: FileType::Directory,
                name: "..".into(),
            },
        ];
        for entry in fs::read_dir(&path)? {
            let entry = entry?;
            // An entry removed since the listing began is left out.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            listing.push(DirEntry {
                ino: entry.ino(),
                kind: FileType::from_std(kind).unwrap_or(FileType::RegularFile),
                name: entry.file_name(),
            });
        }
        Ok(self.handles.open(ino.0, dir, Some(listing)))
    }

    pub(crate) fn remove(&self, parent: INodeNo, name: &OsStr, dir: bool) -> Result<()> {
        let path = self.inodes.child(parent, name)?;
        let meta = fs::symlink_metadata(&path)?;
        if dir {
            fs::remove_dir(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
        self.inodes
            .removed(&path, attr::key(&meta), dir || meta.nlink() <= 1);
        Ok(())
    }

    pub(crate) fn rename_entry(
        &self,
        from: (INodeNo, &OsStr),
        to: (INodeNo, &OsStr),
        flags: RenameFlags,
    ) -> Result<()> {
        let from = self.inodes.child(from.0, from.1)?;
        let to = self.inodes.child(to.0, to.1)?;
        let moved = fs::symlink_metadata(&from)?;
        let replaced = fs::symlink_metadata(&to).ok();
        if flags.is_empty() {
            fs::rename(&from, &to)?;
        } else {
            let flags = nix::fcntl::RenameFlags::from_bits_retain(flags.bits());
            nix::fcntl::renameat2(AT_FDCWD, &from, AT_FDCWD, &to, flags).map_err(nix_errno)?;
        }
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            self.inodes.exchanged(&from, &to);
            return Ok(());
        }
        if let Some(old) = replaced {
            if attr::key(&old) == attr::key(&moved) {
                // Two links of one file: rename does nothing, both names stay.
                return Ok(());
            }
            let last = old.is_dir() || old.nlink() <= 1;
            self.inodes.removed(&to, attr::key(&old), last);
        }
        self.inodes.renamed(&from, &to);
        Ok(())
    }

    pub(crate) fn read_at(&self, fh: FileHandle, offset: u64, size: u32) -> Result<Vec<u8>> {
        let file = self.handles.file(fh)?;
        let size = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
        let mut buf = vec![0; size];
        let mut filled = 0;
        while filled < size {
            let at = offset.checked_add(filled as u64).ok_or(Errno::EINVAL)?;
            match file.read_at(&mut buf[filled..], at) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    pub(crate) fn statfs_of(&self, ino: INodeNo) -> Result<nix::sys::statvfs::Statvfs> {
        let path = self
            .inodes
            .path(ino)
            .or_else(|_| self.inodes.path(INodeNo::ROOT))?;
        nix::sys::statvfs::statvfs(&path).map_err(nix_errno)
    }

    pub(crate) fn check_access(&self, ino: INodeNo, mask: AccessFlags) -> Result<()> {
        let path = self.inodes.path(ino)?;
        let mask = nix::unistd::AccessFlags::from_bits_truncate(mask.bits());
        nix::unistd::access(&path, mask).map_err(nix_errno)
    }

    /// fallocate on the backing file; its errno when its file system refuses `mode`.
    pub(crate) fn allocate(
        &self,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<()> {
        let file = self.handles.file(fh)?;
        let offset = libc::off_t::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let length = libc::off_t::try_from(length).map_err(|_| Errno::EINVAL)?;
        let mode = FallocateFlags::from_bits_retain(mode);
        nix::fcntl::fallocate(&*file, mode, offset, length).map_err(nix_errno)
    }
}
