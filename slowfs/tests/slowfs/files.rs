//! The passthrough: what etcd (Go) and a Rust program do on a data directory, seen the
//! same through the mount and in the backing directory; and the page cache coherence
//! bbolt's read-only `MAP_SHARED` mapping needs while it writes with `pwrite`.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

use crate::mounted::Mounted;

#[test]
#[allow(unsafe_code)] // mmap: what etcd's bbolt does to its file, which the FUSE layer must serve
fn a_read_only_shared_mapping_sees_what_pwrite_wrote_through_another_descriptor() {
    const LEN: usize = 8192;
    let m = Mounted::new(0);
    let path = m.mnt.join("db");
    fs::write(&path, vec![0u8; LEN]).unwrap();
    let reader = File::open(&path).unwrap();
    // SAFETY: a fresh read-only mapping of LEN bytes of a file that long, unmapped below;
    // the bytes are only read through volatile reads while it is mapped.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            LEN,
            libc::PROT_READ,
            libc::MAP_SHARED,
            reader.as_raw_fd(),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED, "{}", std::io::Error::last_os_error());
    let byte = |at: usize| -> u8 {
        assert!(at < LEN);
        // SAFETY: `at` is inside the live mapping.
        unsafe { std::ptr::read_volatile((map as *const u8).add(at)) }
    };
    // Both pages are in the page cache before the writes.
    assert_eq!((byte(100), byte(4096 + 7)), (0, 0));

    let writer = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    writer.write_all_at(b"bbolt meta", 100).unwrap();
    writer.write_all_at(b"page 1", 4096 + 7).unwrap();
    let seen: Vec<u8> = (100..110).map(byte).collect();
    let seen_next: Vec<u8> = (4096 + 7..4096 + 13).map(byte).collect();
    // A second round on the same, now cached, pages.
    writer.write_all_at(b"BBOLT", 100).unwrap();
    let seen_again: Vec<u8> = (100..110).map(byte).collect();
    // SAFETY: the mapping made above, not used after this.
    assert_eq!(unsafe { libc::munmap(map, LEN) }, 0);

    assert_eq!(String::from_utf8_lossy(&seen), "bbolt meta");
    assert_eq!(String::from_utf8_lossy(&seen_next), "page 1");
    assert_eq!(String::from_utf8_lossy(&seen_again), "BBOLT meta");
    let backing = fs::read(m.backing.join("db")).unwrap();
    assert_eq!(&backing[100..110], b"BBOLT meta");
}

#[test]
fn directories_keep_their_mode_and_list_every_entry() {
    let m = Mounted::new(0);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(m.mnt.join("member"))
        .unwrap();
    for at in [m.mnt.join("member"), m.backing.join("member")] {
        assert_eq!(fs::metadata(&at).unwrap().mode() & 0o7777, 0o700, "{at:?}");
    }
    let dir = m.mnt.join("member");
    fs::create_dir(dir.join("wal")).unwrap();
    for name in ["a", "b", "c"] {
        fs::write(dir.join(name), name).unwrap();
    }
    let mut listed = Dir::open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
    let names: BTreeSet<String> = listed
        .iter()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = [".", "..", "a", "b", "c", "wal"].map(String::from).into();
    assert_eq!(names, want);

    assert_eq!(
        fs::create_dir(dir.join("wal")).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    fs::write(dir.join("wal/0.wal"), "x").unwrap();
    let err = fs::remove_dir(dir.join("wal")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY));
    fs::remove_file(dir.join("wal/0.wal")).unwrap();
    fs::remove_dir(dir.join("wal")).unwrap();
    assert!(!m.backing.join("member/wal").exists());
    assert_eq!(
        File::open(dir.join("missing")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn rename_replaces_a_file_and_unlink_removes_one() {
    let m = Mounted::new(0);
    let (tmp, db) = (m.mnt.join("db.tmp"), m.mnt.join("db"));
    fs::write(&db, "old").unwrap();
    fs::write(&tmp, "new").unwrap();
    let before = fs::metadata(&tmp).unwrap().ino();
    fs::rename(&tmp, &db).unwrap();
    assert_eq!(fs::read_to_string(&db).unwrap(), "new");
    assert_eq!(fs::metadata(&db).unwrap().ino(), before);
    assert!(!tmp.exists());
    assert_eq!(fs::read_to_string(m.backing.join("db")).unwrap(), "new");
    assert!(!m.backing.join("db.tmp").exists());

    // A directory renamed: what is below it is found under the new name.
    fs::create_dir_all(m.mnt.join("snap.tmp/inner")).unwrap();
    fs::write(m.mnt.join("snap.tmp/inner/f"), "below").unwrap();
    let held = File::open(m.mnt.join("snap.tmp/inner/f")).unwrap();
    fs::rename(m.mnt.join("snap.tmp"), m.mnt.join("snap")).unwrap();
    assert_eq!(
        fs::read_to_string(m.mnt.join("snap/inner/f")).unwrap(),
        "below"
    );
    assert_eq!(held.metadata().unwrap().len(), 5);

    // An unlinked file still open reads on; its name is gone from both sides.
    let mut open = File::open(&db).unwrap();
    fs::remove_file(&db).unwrap();
    assert!(!db.exists() && !m.backing.join("db").exists());
    let mut read = String::new();
    open.read_to_string(&mut read).unwrap();
    assert_eq!(read, "new");
    assert_eq!(open.metadata().unwrap().nlink(), 0);
    // A new file of the same name is a new file.
    fs::write(&db, "newer").unwrap();
    assert_eq!(fs::read_to_string(&db).unwrap(), "newer");
}

#[test]
fn fallocate_ftruncate_append_and_truncate_reach_the_backing_file() {
    let m = Mounted::new(0);
    let path = m.mnt.join("0000000000000000-0000000000000000.wal");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    // etcd's WAL preallocation: mode 0 extends the file.
    nix::fcntl::fallocate(&file, FallocateFlags::empty(), 0, 1 << 20).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 1 << 20);
    assert_eq!(
        fs::metadata(m.backing.join(path.file_name().unwrap()))
            .unwrap()
            .len(),
        1 << 20
    );
    nix::fcntl::fallocate(&file, FallocateFlags::FALLOC_FL_KEEP_SIZE, 0, 2 << 20).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 1 << 20);
    assert!(file.metadata().unwrap().blocks() * 512 >= 2 << 20);

    file.set_len(10).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 10);
    assert_eq!(
        fs::read(m.backing.join(path.file_name().unwrap())).unwrap(),
        [0; 10]
    );

    let log = m.mnt.join("log");
    fs::write(&log, "one\n").unwrap();
    let mut appending = OpenOptions::new().append(true).open(&log).unwrap();
    appending.write_all(b"two\n").unwrap();
    appending.write_all(b"three\n").unwrap();
    assert_eq!(
        fs::read_to_string(m.backing.join("log")).unwrap(),
        "one\ntwo\nthree\n"
    );
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    assert_eq!(fs::metadata(m.backing.join("log")).unwrap().len(), 0);
}

#[test]
fn flock_is_exclusive_between_open_file_descriptions() {
    let m = Mounted::new(0);
    let path = m.mnt.join("LOCK");
    fs::write(&path, "").unwrap();
    let first = Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .expect("the first lock");
    let second = Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusiveNonblock);
    assert_eq!(
        second.map(drop).map_err(|(_, e)| e),
        Err(Errno::EWOULDBLOCK)
    );
    drop(first);
    let third = Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusiveNonblock);
    assert!(third.is_ok(), "the lock is free once its holder closed");
}

#[test]
fn modes_times_links_and_symlinks_pass_through() {
    let m = Mounted::new(0);
    let path = m.mnt.join("key.pem");
    fs::write(&path, "secret").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        fs::metadata(m.backing.join("key.pem")).unwrap().mode() & 0o7777,
        0o600
    );

    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(at)
        .unwrap();
    assert_eq!(
        fs::metadata(m.backing.join("key.pem"))
            .unwrap()
            .modified()
            .unwrap(),
        at
    );
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), at);

    fs::hard_link(&path, m.mnt.join("key.link")).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().nlink(), 2);
    assert_eq!(
        fs::read_to_string(m.mnt.join("key.link")).unwrap(),
        "secret"
    );
    std::os::unix::fs::symlink("key.pem", m.mnt.join("current")).unwrap();
    assert_eq!(
        fs::read_link(m.mnt.join("current")).unwrap().to_str(),
        Some("key.pem")
    );
    assert_eq!(fs::read_to_string(m.mnt.join("current")).unwrap(), "secret");
    assert_eq!(
        fs::read_link(m.backing.join("current")).unwrap().to_str(),
        Some("key.pem")
    );

    let stat = nix::sys::statvfs::statvfs(&m.mnt).unwrap();
    assert!(stat.blocks() > 0);
    assert!(nix::unistd::access(&path, nix::unistd::AccessFlags::R_OK).is_ok());
}
