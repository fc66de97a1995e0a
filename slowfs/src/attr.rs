//! Attributes: a backing file's real `stat` as FUSE attributes, and the changes setattr
//! makes to a backing file (mode, owner, size, times).
//!
//! Invariants: every attribute the kernel gets is the backing file's own (mode, nlink,
//! uid, gid, size, blocks, times, rdev, blksize) under the node id the table gave it;
//! nothing here panics on any value a backing `stat` or the kernel gives (times before
//! 1970 included).

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo, TimeOrNow};

use crate::inodes::Key;

/// How long the kernel may keep an entry or attributes before asking again.
pub const TTL: Duration = Duration::from_millis(100);

/// The inode key of `meta`.
pub fn key(meta: &Metadata) -> Key {
    (meta.dev(), meta.ino())
}

/// The FUSE attributes of node `ino`, whose backing `stat` is `meta`.
pub fn attr(ino: u64, meta: &Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: meta.size(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: kind(meta.mode()),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: u32::try_from(meta.rdev()).unwrap_or(0),
        blksize: u32::try_from(meta.blksize()).unwrap_or(4096),
        flags: 0,
    }
}

/// The file type of `st_mode`.
pub fn kind(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

fn time(secs: i64, nsec: i64) -> SystemTime {
    let nsec = u32::try_from(nsec.clamp(0, 999_999_999)).unwrap_or(0);
    let at = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nsec))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::new(secs.unsigned_abs(), 0))
            .and_then(|t| t.checked_add(Duration::new(0, nsec)))
    };
    at.unwrap_or(UNIX_EPOCH)
}

fn timespec(t: Option<TimeOrNow>) -> libc::timespec {
    let (tv_sec, tv_nsec) = match t {
        None => (0, libc::UTIME_OMIT),
        Some(TimeOrNow::Now) => (0, libc::UTIME_NOW),
        Some(TimeOrNow::SpecificTime(at)) => match at.duration_since(UNIX_EPOCH) {
            Ok(d) => (
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                i64::from(d.subsec_nanos()),
            ),
            Err(before) => {
                let d = before.duration();
                let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                match d.subsec_nanos() {
                    0 => (secs, 0),
                    n => (secs - 1, 1_000_000_000 - i64::from(n)),
                }
            }
        },
    };
    libc::timespec { tv_sec, tv_nsec }
}

/// Sets the access and modification times (each left alone when `None`) of the open
/// `file`, or else of `path` itself (a symlink's own times, never its target's).
#[allow(unsafe_code)] // futimens and utimensat: std has no call that sets a symlink's own times
pub fn set_times(
    file: Option<&File>,
    path: &Path,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
) -> io::Result<()> {
    let times = [timespec(atime), timespec(mtime)];
    let rc = match file {
        // SAFETY: the fd is open for the call (borrowed from `file`); `times` is two
        // timespecs, as futimens reads.
        Some(f) => unsafe { libc::futimens(f.as_raw_fd(), times.as_ptr()) },
        None => {
            let c = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: `c` is a NUL-terminated path alive for the call; `times` as above.
            unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    c.as_ptr(),
                    times.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            }
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_and_after_1970_round_trip() {
        let before = UNIX_EPOCH - Duration::new(5, 250_000_000);
        let ts = timespec(Some(TimeOrNow::SpecificTime(before)));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (-6, 750_000_000));
        assert_eq!(time(ts.tv_sec, ts.tv_nsec), before);
        let after = UNIX_EPOCH + Duration::new(7, 5);
        let ts = timespec(Some(TimeOrNow::SpecificTime(after)));
        assert_eq!(time(ts.tv_sec, ts.tv_nsec), after);
        assert_eq!(timespec(None).tv_nsec, libc::UTIME_OMIT);
        assert_eq!(kind(libc::S_IFDIR | 0o700), FileType::Directory);
    }
}
