//! Folders and files only their owner can open: created `0700` and `0600`
//! from the start (never wider for a moment), tightened when found wider,
//! and refused when another OS user owns them. Another user who can read a
//! secret file has the secret; one who can open a lock file can `flock` it
//! and leave every process that waits on it hanging.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Why a folder or file could not be made owner-only. Names the path and,
/// for another owner, its uid; never what the file holds.
#[derive(Debug, thiserror::Error)]
pub enum OwnerOnlyError {
    /// Another OS user owns it: we neither use nor change it.
    #[error("{path} belongs to another user of this computer (uid {uid}), so it is not used; remove it or choose another data directory")]
    OtherOwner {
        /// The folder or file.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// A lock file is a symbolic link, which someone may have pointed anywhere.
    #[error("{path} is a symbolic link, so it is not followed; remove it")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Creating, reading or changing it failed.
    #[error("{path}: {error}")]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// What the OS said.
        error: io::Error,
    },
}

impl OwnerOnlyError {
    /// A stable code for the kind of failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OtherOwner { .. } => "other_owner",
            Self::Symlink { .. } => "symlink",
            Self::Io { .. } => "io",
        }
    }
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> OwnerOnlyError + '_ {
    move |error| OwnerOnlyError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Creates `path` (and missing parents) as `0700`, or tightens it to `0700`
/// when it exists wider. A folder another user owns is refused.
pub fn dir(path: &Path) -> Result<(), OwnerOnlyError> {
    dir_as(path, crate::peer::own_uid())
}

/// Opens the lock file at `path` for reading and writing, creating it (and
/// its folder, owner-only) as `0600`. One found wider is replaced by a new
/// `0600` file rather than tightened: another user may have opened it while
/// it was readable, and a lock taken through that old handle would still
/// hold. One another user owns, or a symbolic link, is refused.
pub fn lock_file(path: &Path) -> Result<File, OwnerOnlyError> {
    lock_file_as(path, crate::peer::own_uid())
}

/// Tightens the existing file at `path` to `0600` when it is wider; a
/// missing file is left missing. One another user owns is refused.
pub fn existing_file(path: &Path) -> Result<(), OwnerOnlyError> {
    existing_file_as(path, crate::peer::own_uid())
}

/// Permission bits for anyone but the owner.
#[cfg(unix)]
const OTHERS: u32 = 0o077;

/// Refuses what another user owns; `me` is `None` where the OS does not say
/// who we are, and then the OS's own permission checks are all that stands.
#[cfg(unix)]
fn ours(path: &Path, uid: u32, me: Option<u32>) -> Result<(), OwnerOnlyError> {
    match me {
        Some(me) if uid != me => Err(OwnerOnlyError::OtherOwner {
            path: path.to_path_buf(),
            uid,
        }),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn tightened(path: &Path, was: u32, now: u32) {
    tracing::info!(
        "{} was open to other users (mode {:o}); made it owner-only ({now:o})",
        path.display(),
        was & 0o777
    );
}

#[cfg(unix)]
fn dir_as(path: &Path, me: Option<u32>) -> Result<(), OwnerOnlyError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_error(path))?;
    // Followed: the data folder may be a link the person made.
    let meta = fs::metadata(path).map_err(io_error(path))?;
    ours(path, meta.uid(), me)?;
    if meta.mode() & OTHERS != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io_error(path))?;
        tightened(path, meta.mode(), 0o700);
    }
    Ok(())
}

#[cfg(unix)]
fn lock_file_as(path: &Path, me: Option<u32>) -> Result<File, OwnerOnlyError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    if let Some(parent) = path.parent() {
        dir_as(parent, me)?;
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(OwnerOnlyError::Symlink {
                path: path.to_path_buf(),
            })
        }
        Ok(m) => {
            ours(path, m.uid(), me)?;
            if m.mode() & OTHERS != 0 {
                // A process of ours holding the old file's lock at this
                // moment would race the next one: that can only happen
                // once, on the first start after the file was wide.
                fs::remove_file(path).map_err(io_error(path))?;
                tightened(path, m.mode(), 0o600);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(path)(e)),
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    // What we opened, not the path: someone may have raced us to it.
    let meta = file.metadata().map_err(io_error(path))?;
    ours(path, meta.uid(), me)?;
    if meta.mode() & OTHERS != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_error(path))?;
        tightened(path, meta.mode(), 0o600);
    }
    Ok(file)
}

#[cfg(unix)]
fn existing_file_as(path: &Path, me: Option<u32>) -> Result<(), OwnerOnlyError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path)(e)),
    };
    ours(path, meta.uid(), me)?;
    if meta.mode() & OTHERS != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_error(path))?;
        tightened(path, meta.mode(), 0o600);
    }
    Ok(())
}

// No Unix modes elsewhere: the folder and files are created in the user's
// own profile, which the OS keeps to them.

#[cfg(not(unix))]
fn dir_as(path: &Path, _me: Option<u32>) -> Result<(), OwnerOnlyError> {
    fs::create_dir_all(path).map_err(io_error(path))
}

#[cfg(not(unix))]
fn lock_file_as(path: &Path, me: Option<u32>) -> Result<File, OwnerOnlyError> {
    if let Some(parent) = path.parent() {
        dir_as(parent, me)?;
    }
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_error(path))
}

#[cfg(not(unix))]
fn existing_file_as(_path: &Path, _me: Option<u32>) -> Result<(), OwnerOnlyError> {
    Ok(())
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).expect("stat").mode() & 0o777
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn me() -> Option<u32> {
        crate::peer::own_uid()
    }

    #[test]
    fn created_owner_only_from_the_start() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let lock = tmp.path().join("data/bridge/x.lock");
        let _held = lock_file_as(&lock, me()).expect("lock file");
        assert_eq!(mode(&tmp.path().join("data")), 0o700);
        assert_eq!(mode(&tmp.path().join("data/bridge")), 0o700);
        assert_eq!(mode(&lock), 0o600);
    }

    #[test]
    fn found_wider_they_are_tightened_and_a_wide_lock_file_is_a_new_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        fs::create_dir(&dir).expect("mkdir");
        set_mode(&dir, 0o755);
        let lock = dir.join("x.lock");
        fs::write(&lock, b"").expect("write");
        set_mode(&lock, 0o644);
        let secret = dir.join("s.json");
        fs::write(&secret, b"{}").expect("write");
        set_mode(&secret, 0o644);
        // What another user could have done while the lock file was 0644.
        let old = File::open(&lock).expect("open the wide lock file");
        old.lock().expect("lock it");

        let file = lock_file_as(&lock, me()).expect("lock file");
        existing_file_as(&secret, me()).expect("secret file");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&lock), 0o600);
        assert_eq!(mode(&secret), 0o600);
        assert_eq!(fs::read(&secret).expect("read"), b"{}", "content kept");
        assert_ne!(
            file.metadata().expect("stat").ino(),
            old.metadata().expect("stat").ino(),
            "a new lock file, not the one the old handle holds"
        );
        file.try_lock()
            .expect("the old handle's lock does not hold the new file");
    }

    #[test]
    fn what_another_user_owns_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        fs::create_dir(&dir).expect("mkdir");
        set_mode(&dir, 0o755);
        let lock = dir.join("x.lock");
        fs::write(&lock, b"").expect("write");
        set_mode(&lock, 0o644);
        // Pretend to be someone else: everything here is then another
        // user's (a real second user is the e2e test's, run as root).
        let owner = me().expect("our uid");
        let stranger = Some(owner.wrapping_add(1));

        let e = dir_as(&dir, stranger).expect_err("another user's folder");
        assert_eq!(e.code(), "other_owner");
        assert_eq!(
            e.to_string(),
            format!(
                "{} belongs to another user of this computer (uid {owner}), so it is not used; remove it or choose another data directory",
                dir.display()
            )
        );
        assert_eq!(mode(&dir), 0o755, "left as it was");

        let e = lock_file_as(&lock, stranger).expect_err("another user's lock file");
        assert_eq!(e.code(), "other_owner");
        assert_eq!(mode(&lock), 0o644, "left as it was");

        let e = existing_file_as(&lock, stranger).expect_err("another user's file");
        assert_eq!(e.code(), "other_owner");
        assert_eq!(mode(&lock), 0o644, "left as it was");
    }

    #[test]
    fn a_lock_file_that_is_a_symlink_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let target = tmp.path().join("elsewhere");
        fs::write(&target, b"keep").expect("write");
        set_mode(&target, 0o644);
        let lock = tmp.path().join("x.lock");
        std::os::unix::fs::symlink(&target, &lock).expect("symlink");
        let e = lock_file_as(&lock, me()).expect_err("symlink");
        assert_eq!(e.code(), "symlink");
        assert_eq!(mode(&target), 0o644, "the target is untouched");
        assert_eq!(fs::read(&target).expect("read"), b"keep");
    }
}
