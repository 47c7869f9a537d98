//! The file store for headless machines: one `0600` JSON file per vault in
//! the data dir, chosen explicitly, never a fallback from the keychain.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use super::backend::{SecretBackend, SecretError, FILE_STORE_NAME};
use super::owner_only;
use crate::sensitive::Sensitive;

/// A JSON file `{ "<account id>": "<secret>" }`, mode `0600`, replaced
/// atomically on every write. Read-modify-write is serialized across
/// processes (the daemon, the CLI and bridges) with a lock on a sibling
/// file. The folder, the file and the lock are the owner's alone
/// ([`owner_only`]): created so, tightened when found wider.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    // Serializes read-modify-write within this process.
    lock: Mutex<()>,
}

/// Which kind of cross-process lock to hold.
enum Hold {
    Shared,
    Exclusive,
}

impl FileStore {
    /// A file store at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Mutex::new(()),
        }
    }

    /// Takes the cross-process lock; released when the file is dropped.
    fn hold(&self, hold: Hold) -> Result<fs::File, SecretError> {
        let dir = self
            .path
            .parent()
            .ok_or_else(|| self.err("no parent directory"))?;
        // Another user able to open the lock could hold it and stall us.
        let file = owner_only::lock_file(&dir.join(format!("{FILE_STORE_NAME}.lock")))
            .map_err(|e| self.err(e))?;
        match hold {
            Hold::Shared => file.lock_shared(),
            Hold::Exclusive => file.lock(),
        }
        .map_err(|e| self.err(e))?;
        Ok(file)
    }

    fn err(&self, reason: impl ToString) -> SecretError {
        SecretError::File {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    fn read(&self) -> Result<BTreeMap<String, String>, SecretError> {
        // A file an older version or the person left readable to others.
        owner_only::existing_file(&self.path).map_err(|e| self.err(e))?;
        match fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|_| self.err("not a valid secret file"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(self.err(e)),
        }
    }

    fn write(&self, map: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let dir = self
            .path
            .parent()
            .ok_or_else(|| self.err("no parent directory"))?;
        owner_only::dir(dir).map_err(|e| self.err(e))?;
        let tmp = dir.join(format!(".{FILE_STORE_NAME}.{}.tmp", std::process::id()));
        // A new file, never one left behind: a leftover keeps its owner and
        // mode, and the rename would make them the secret file's.
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.err(e)),
        }
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let result = (|| {
            let mut f = opts.open(&tmp)?;
            let body = serde_json::to_vec_pretty(map).map_err(std::io::Error::other)?;
            f.write_all(&body)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|e| self.err(e))
    }
}

impl SecretBackend for FileStore {
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>, SecretError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let _held = self.hold(Hold::Shared)?;
        Ok(self.read()?.remove(account).map(Sensitive::new))
    }

    fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<(), SecretError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let _held = self.hold(Hold::Exclusive)?;
        let mut map = self.read()?;
        map.insert(account.to_string(), secret.expose().clone());
        self.write(&map)
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let _held = self.hold(Hold::Exclusive)?;
        let mut map = self.read()?;
        if map.remove(account).is_some() {
            self.write(&map)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("file store ({})", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_with_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path().join(FILE_STORE_NAME));
        assert!(store.get("a").expect("get").is_none());
        store
            .set("a", &Sensitive::new("spor_pat_x".into()))
            .expect("set");
        assert_eq!(
            store.get("a").expect("get").expect("some").expose(),
            "spor_pat_x"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(FILE_STORE_NAME))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        store.delete("a").expect("delete");
        assert!(store.get("a").expect("get").is_none());
        store.delete("a").expect("deleting twice is fine");
    }

    #[test]
    fn writers_with_separate_handles_never_lose_each_others_entries() {
        // Separate `FileStore`s stand in for separate processes: only the
        // file lock orders them.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_STORE_NAME);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let store = FileStore::new(path);
                    for i in 0..25 {
                        store
                            .set(
                                &format!("acct_{t}_{i}"),
                                &Sensitive::new(format!("spor_pat_{t}_{i}")),
                            )
                            .expect("set");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("writer");
        }
        let store = FileStore::new(path);
        for t in 0..4 {
            for i in 0..25 {
                assert_eq!(
                    store
                        .get(&format!("acct_{t}_{i}"))
                        .expect("get")
                        .expect("kept")
                        .expose(),
                    &format!("spor_pat_{t}_{i}")
                );
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_secret_file_and_lock_found_wider_are_tightened_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let path = dir.join(FILE_STORE_NAME);
        let lock = dir.join(format!("{FILE_STORE_NAME}.lock"));
        fs::create_dir(&dir).expect("mkdir");
        fs::write(&path, br#"{"a": "spor_pat_old"}"#).expect("write");
        fs::write(&lock, b"").expect("write");
        let left_behind = dir.join(format!(".{FILE_STORE_NAME}.{}.tmp", std::process::id()));
        fs::write(&left_behind, b"").expect("write");
        for p in [&dir, &path, &lock, &left_behind] {
            let mode = if p == &dir { 0o755 } else { 0o644 };
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
        }
        let mode = |p: &PathBuf| fs::metadata(p).expect("stat").permissions().mode() & 0o777;

        let store = FileStore::new(path.clone());
        assert_eq!(
            store.get("a").expect("get").expect("kept").expose(),
            "spor_pat_old"
        );
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&lock), 0o600);
        store
            .set("b", &Sensitive::new("spor_pat_new".into()))
            .expect("set");
        assert_eq!(mode(&path), 0o600, "not the left-behind file's mode");
        assert!(!left_behind.exists());
    }

    #[test]
    fn corrupt_file_is_an_error_not_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_STORE_NAME);
        fs::write(&path, b"spor_pat_leaky{").expect("write");
        let err = FileStore::new(path).get("a").expect_err("corrupt");
        assert!(!err.to_string().contains("spor_pat_leaky"));
    }
}
