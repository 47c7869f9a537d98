//! Reading and replacing a host's config file safely: symlinks followed to
//! the real file (dotfile managers link configs), a one-time backup of the
//! original, and an atomic replace (temp file in the same folder, fsync,
//! rename) that keeps the file's permissions.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::error::ConnectError;

/// Larger files are refused: no host config is anywhere near this.
const MAX_BYTES: u64 = 8 * 1024 * 1024;
/// Symlink hops followed before giving up (a loop).
const MAX_LINKS: usize = 40;
/// Appended to the config's name for the one-time backup.
pub const BACKUP_SUFFIX: &str = ".spor-backup";

/// The file a write to `path` really changes: `path` with symlinks followed.
pub fn resolve(path: &Path) -> Result<PathBuf, ConnectError> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p).map_err(|e| ConnectError::read(&p, e))?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(tidy(path, p)),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(tidy(path, p)),
            Err(e) => return Err(ConnectError::read(&p, e)),
        }
    }
    Err(ConnectError::SymlinkLoop(path.to_path_buf()))
}

/// A followed link's target without `..` hops (for the messages and the
/// backup's name); the folder is real, so canonicalizing it is exact.
fn tidy(original: &Path, resolved: PathBuf) -> PathBuf {
    if resolved == original {
        return resolved;
    }
    match (resolved.parent(), resolved.file_name()) {
        (Some(dir), Some(name)) => fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(resolved),
        _ => resolved,
    }
}

/// The file's text, or `None` when it does not exist.
pub fn read(path: &Path) -> Result<Option<String>, ConnectError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConnectError::read(path, e)),
    };
    let meta = file.metadata().map_err(|e| ConnectError::read(path, e))?;
    if !meta.is_file() {
        return Err(ConnectError::NotAFile(path.to_path_buf()));
    }
    if meta.len() > MAX_BYTES {
        return Err(ConnectError::TooLarge(path.to_path_buf()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConnectError::read(path, e))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(ConnectError::TooLarge(path.to_path_buf()));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| ConnectError::NotUtf8(path.to_path_buf()))
}

/// Where the one-time backup of `path` lives.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(BACKUP_SUFFIX);
    path.with_file_name(name)
}

/// Replaces `path` (already resolved) with `text`. `original` is what the
/// file held (`None`: it did not exist); it is copied to the backup unless
/// a backup already exists. Returns the backup made now, if any.
pub fn replace(
    path: &Path,
    original: Option<&str>,
    text: &str,
) -> Result<Option<PathBuf>, ConnectError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| ConnectError::write(&dir, e))?;
    let permissions = fs::metadata(path).ok().map(|m| m.permissions());
    let backup = match original {
        Some(original) => make_backup(path, original, permissions.as_ref())?,
        None => None,
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.spor-{:016x}.tmp", rand::random::<u64>()));
    let written = write_new(&temp, text.as_bytes(), permissions.as_ref())
        .and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(ConnectError::write(path, e));
    }
    sync_dir(&dir);
    Ok(backup)
}

/// Writes `bytes` to `path` as a whole new file, or atomically in place of
/// the file there (a folder is refused). No backup: for files that are
/// entirely ours, such as a saved extension.
pub fn create_or_replace(path: &Path, bytes: &[u8]) -> Result<(), ConnectError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Err(ConnectError::NotAFile(path.to_path_buf())),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(ConnectError::write(path, e)),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.spor-{:016x}.tmp", rand::random::<u64>()));
    let written = write_new(&temp, bytes, None).and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(ConnectError::write(path, e));
    }
    sync_dir(&dir);
    Ok(())
}

/// Copies the original aside once; a backup that exists is never touched,
/// so it always holds the file as it was before Spor Companion changed it.
fn make_backup(
    path: &Path,
    original: &str,
    permissions: Option<&fs::Permissions>,
) -> Result<Option<PathBuf>, ConnectError> {
    let backup = backup_path(path);
    match write_new(&backup, original.as_bytes(), permissions) {
        Ok(()) => Ok(Some(backup)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(ConnectError::write(&backup, e)),
    }
}

/// Creates `path` (which must not exist) with `bytes`, flushed to disk.
fn write_new(
    path: &Path,
    bytes: &[u8],
    permissions: Option<&fs::Permissions>,
) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    let result = (|| {
        if let Some(p) = permissions {
            f.set_permissions(p.clone())?;
        }
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if result.is_err() {
        drop(f);
        let _ = fs::remove_file(path);
    }
    result
}

/// Makes the rename durable; best effort (not every platform can open a
/// directory, and the data itself is already on disk).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
