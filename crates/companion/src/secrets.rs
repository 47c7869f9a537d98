//! Where PATs live: the OS keychain (default) or, chosen explicitly for
//! headless machines, a `0600` JSON file in the data dir. Never a silent
//! fallback from one to the other.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sensitive::Sensitive;

/// Keychain service name under which every account's PAT is stored.
pub const KEYCHAIN_SERVICE: &str = "spor-companion";
/// File name of the file store inside the data dir.
pub const FILE_STORE_NAME: &str = "secrets.json";
/// Keychain service of the stdio bridge's own OAuth credentials.
pub const BRIDGE_KEYCHAIN_SERVICE: &str = "spor-companion-bridge";
/// File name of the bridge's file store inside the data dir.
pub const BRIDGE_FILE_STORE_NAME: &str = "bridge-secrets.json";

/// Whose secrets a store holds: the companion's PATs, or the bridge's tokens
/// as a client of the companion. Kept apart so neither can read or clobber
/// the other's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vault {
    /// Personal access tokens, one per account.
    Pats,
    /// The bridge's client registration and tokens, one per server and host.
    Bridge,
}

impl Vault {
    fn keychain_service(self) -> &'static str {
        match self {
            Self::Pats => KEYCHAIN_SERVICE,
            Self::Bridge => BRIDGE_KEYCHAIN_SERVICE,
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Self::Pats => FILE_STORE_NAME,
            Self::Bridge => BRIDGE_FILE_STORE_NAME,
        }
    }
}

/// Which secret store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretStoreKind {
    /// The OS keychain (Secret Service, macOS Keychain, Windows Credential Manager).
    Keychain,
    /// A `0600` JSON file in the data dir.
    File,
}

impl SecretStoreKind {
    /// The name users type and see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keychain => "keychain",
            Self::File => "file",
        }
    }
}

/// Errors from a secret store. Never carries the secret itself.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The keychain cannot be reached at all.
    #[error("the OS keychain is not available ({0}). On a machine without a desktop keychain, choose the file store explicitly: --secret-store file (or SPOR_COMPANION_SECRET_STORE=file)")]
    KeychainUnavailable(String),
    /// The keychain is there but refused access (locked?).
    #[error("the OS keychain refused access ({0}); unlock it and try again")]
    KeychainLocked(String),
    /// Any other keychain failure.
    #[error("keychain error: {0}")]
    Keychain(String),
    /// The file store could not be read or written.
    #[error("secret file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A blocking task failed.
    #[error("secret store task failed")]
    Join,
}

/// A place to keep one secret per account id. Calls block: run them off the
/// async runtime (see [`SecretStore::get_async`]).
pub trait SecretBackend: Send + Sync + 'static {
    /// Reads the secret for `account`, `None` if there is none.
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>, SecretError>;
    /// Creates or replaces the secret for `account`.
    fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<(), SecretError>;
    /// Deletes the secret for `account`; absent is not an error.
    fn delete(&self, account: &str) -> Result<(), SecretError>;
    /// Human description, e.g. "OS keychain (Secret Service)".
    fn describe(&self) -> String;
}

/// A shareable handle on the configured backend.
#[derive(Clone)]
pub struct SecretStore(Arc<dyn SecretBackend>);

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretStore({})", self.0.describe())
    }
}

impl SecretStore {
    /// Wraps a backend.
    pub fn new(backend: impl SecretBackend) -> Self {
        Self(Arc::new(backend))
    }

    /// Opens the store of the given kind; the keychain is probed so an
    /// unavailable one is reported now rather than at first use.
    pub fn open(kind: SecretStoreKind, data_dir: &Path) -> Result<Self, SecretError> {
        Self::open_vault(Vault::Pats, kind, data_dir)
    }

    /// Like [`SecretStore::open`], for the given vault.
    pub fn open_vault(
        vault: Vault,
        kind: SecretStoreKind,
        data_dir: &Path,
    ) -> Result<Self, SecretError> {
        match kind {
            SecretStoreKind::Keychain => Ok(Self::new(KeychainStore::probe(vault)?)),
            SecretStoreKind::File => {
                Ok(Self::new(FileStore::new(data_dir.join(vault.file_name()))))
            }
        }
    }

    /// Which store this is, for the user.
    pub fn describe(&self) -> String {
        self.0.describe()
    }

    /// Blocking read.
    pub fn get(&self, account: &str) -> Result<Option<Sensitive<String>>, SecretError> {
        self.0.get(account)
    }

    /// Blocking write.
    pub fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<(), SecretError> {
        self.0.set(account, secret)
    }

    /// Blocking delete.
    pub fn delete(&self, account: &str) -> Result<(), SecretError> {
        self.0.delete(account)
    }

    /// Read on the blocking pool.
    pub async fn get_async(
        &self,
        account: String,
    ) -> Result<Option<Sensitive<String>>, SecretError> {
        let b = self.0.clone();
        tokio::task::spawn_blocking(move || b.get(&account))
            .await
            .map_err(|_| SecretError::Join)?
    }

    /// Write on the blocking pool.
    pub async fn set_async(
        &self,
        account: String,
        secret: Sensitive<String>,
    ) -> Result<(), SecretError> {
        let b = self.0.clone();
        tokio::task::spawn_blocking(move || b.set(&account, &secret))
            .await
            .map_err(|_| SecretError::Join)?
    }

    /// Delete on the blocking pool.
    pub async fn delete_async(&self, account: String) -> Result<(), SecretError> {
        let b = self.0.clone();
        tokio::task::spawn_blocking(move || b.delete(&account))
            .await
            .map_err(|_| SecretError::Join)?
    }
}

/// How long one keychain call may take by default. A locked keychain is
/// unlocked through a password prompt and the call waits for it; with
/// nobody to answer (a prompt on a screen no one watches, a prompter that
/// never reports back) it would wait forever, holding `account add` or the
/// request that needs the PAT.
pub const DEFAULT_KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Overrides [`DEFAULT_KEYCHAIN_TIMEOUT`] (whole seconds, at least 1).
pub const KEYCHAIN_TIMEOUT_ENV: &str = "SPOR_COMPANION_KEYCHAIN_TIMEOUT_SECS";

/// The OS keychain through the `keyring` crate.
#[derive(Debug)]
pub struct KeychainStore {
    service: &'static str,
    timeout: Duration,
}

/// What a keychain call left behind for its caller.
enum Slot<T> {
    Waiting,
    Done(Result<T, SecretError>),
    /// The caller gave up waiting.
    Abandoned,
}

/// Puts back what a keychain call changed, if its caller had given up.
type Undo = Box<dyn FnOnce() + Send>;

/// Runs one keychain call on its own thread and waits at most `timeout`.
/// A call stuck on an unanswered unlock prompt is abandoned: the caller gets
/// a clear error at once (no caller and no runtime shutdown waits on it),
/// and nothing is half-written later — a call checks `wanted()` before it
/// writes, and if the prompt is answered after all and the write went
/// through anyway, its `Undo` puts the entry back as it was.
fn bounded<T: Send + 'static>(
    timeout: Duration,
    call: impl FnOnce(&dyn Fn() -> bool) -> (Result<T, SecretError>, Option<Undo>) + Send + 'static,
) -> Result<T, SecretError> {
    let shared = Arc::new((Mutex::new(Slot::Waiting), std::sync::Condvar::new()));
    let theirs = shared.clone();
    std::thread::Builder::new()
        .name("keychain".into())
        .spawn(move || {
            let (slot, done) = &*theirs;
            let wanted = || {
                !matches!(
                    *slot.lock().unwrap_or_else(|p| p.into_inner()),
                    Slot::Abandoned
                )
            };
            let (result, undo) = call(&wanted);
            let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(*s, Slot::Abandoned) {
                drop(s);
                if let (Ok(_), Some(undo)) = (&result, undo) {
                    undo();
                }
                return;
            }
            *s = Slot::Done(result);
            done.notify_all();
        })
        .map_err(|_| SecretError::Keychain("cannot start a keychain call".into()))?;
    let (slot, done) = &*shared;
    let guard = slot.lock().unwrap_or_else(|p| p.into_inner());
    let (mut s, _) = done
        .wait_timeout_while(guard, timeout, |s| matches!(s, Slot::Waiting))
        .unwrap_or_else(|p| p.into_inner());
    match std::mem::replace(&mut *s, Slot::Abandoned) {
        Slot::Done(result) => result,
        _ => Err(SecretError::KeychainLocked(format!(
            "no answer within {} s; it is probably locked and its unlock prompt went unanswered",
            timeout.as_secs()
        ))),
    }
}

/// The entry's current secret (`None` if there is none).
fn current(entry: &keyring::Entry) -> Result<Option<String>, SecretError> {
    match entry.get_password() {
        Ok(p) => Ok(Some(p)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(keyring_error(e)),
    }
}

/// Puts an entry back to `previous`.
fn restore(entry: keyring::Entry, previous: Option<String>) -> Undo {
    Box::new(move || {
        let undone = match previous {
            Some(p) => entry.set_password(&p),
            None => match entry.delete_credential() {
                Err(keyring::Error::NoEntry) => Ok(()),
                other => other,
            },
        };
        if undone.is_err() {
            tracing::error!("could not undo a keychain change whose caller had given up");
        }
    })
}

fn keychain_timeout() -> Duration {
    std::env::var(KEYCHAIN_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(DEFAULT_KEYCHAIN_TIMEOUT, Duration::from_secs)
}

/// Turns a keyring error into ours without ever formatting its payload
/// (some variants carry the secret's bytes).
fn keyring_error(e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::NoStorageAccess(p) => SecretError::KeychainLocked(p.to_string()),
        keyring::Error::PlatformFailure(p) => SecretError::Keychain(p.to_string()),
        keyring::Error::NoDefaultStore => {
            SecretError::KeychainUnavailable("no keychain service found".into())
        }
        keyring::Error::BadEncoding(_) | keyring::Error::BadDataFormat(..) => {
            SecretError::Keychain("the stored entry is not a valid token".into())
        }
        keyring::Error::Ambiguous(_) => {
            SecretError::Keychain("more than one keychain entry matches".into())
        }
        keyring::Error::TooLong(attr, _) => SecretError::Keychain(format!("{attr} too long")),
        keyring::Error::Invalid(attr, why) => SecretError::Keychain(format!("{attr}: {why}")),
        _ => SecretError::Keychain("unexpected keychain failure".into()),
    }
}

impl KeychainStore {
    /// Connects to the platform keychain, failing clearly if there is none.
    pub fn probe(vault: Vault) -> Result<Self, SecretError> {
        let timeout = keychain_timeout();
        let status = bounded(timeout, |_| {
            let status = keyring::Entry::store_status()
                .as_ref()
                .map_err(|e| match e {
                    keyring::Error::PlatformFailure(p) | keyring::Error::NoStorageAccess(p) => {
                        SecretError::KeychainUnavailable(p.to_string())
                    }
                    _ => SecretError::KeychainUnavailable("no keychain service found".into()),
                })
                .copied();
            (status, None)
        });
        match status {
            Ok(()) => Ok(Self {
                service: vault.keychain_service(),
                timeout,
            }),
            // No answer at all while connecting: as good as absent.
            Err(SecretError::KeychainLocked(why)) => Err(SecretError::KeychainUnavailable(why)),
            Err(e) => Err(e),
        }
    }

    fn entry(service: &str, account: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(service, account).map_err(keyring_error)
    }
}

impl SecretBackend for KeychainStore {
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>, SecretError> {
        let (service, account) = (self.service, account.to_string());
        bounded(self.timeout, move |_| {
            let secret = Self::entry(service, &account)
                .and_then(|e| current(&e))
                .map(|p| p.map(Sensitive::new));
            (secret, None)
        })
    }

    fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<(), SecretError> {
        let (service, account, secret) = (self.service, account.to_string(), secret.clone());
        bounded(self.timeout, move |wanted| {
            let written = (|| {
                let entry = Self::entry(service, &account)?;
                // Reading first unlocks (may prompt) and keeps what to put back.
                let previous = current(&entry)?;
                if !wanted() {
                    return Err(SecretError::Join);
                }
                entry.set_password(secret.expose()).map_err(keyring_error)?;
                Ok(restore(Self::entry(service, &account)?, previous))
            })();
            match written {
                Ok(undo) => (Ok(()), Some(undo)),
                Err(e) => (Err(e), None),
            }
        })
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        let (service, account) = (self.service, account.to_string());
        bounded(self.timeout, move |wanted| {
            let deleted = (|| {
                let entry = Self::entry(service, &account)?;
                let previous = current(&entry)?;
                if !wanted() {
                    return Err(SecretError::Join);
                }
                match entry.delete_credential() {
                    Ok(()) | Err(keyring::Error::NoEntry) => {}
                    Err(e) => return Err(keyring_error(e)),
                }
                Ok(restore(Self::entry(service, &account)?, previous))
            })();
            match deleted {
                Ok(undo) => (Ok(()), Some(undo)),
                Err(e) => (Err(e), None),
            }
        })
    }

    fn describe(&self) -> String {
        if cfg!(target_os = "macos") {
            "OS keychain (macOS Keychain)".into()
        } else if cfg!(windows) {
            "OS keychain (Windows Credential Manager)".into()
        } else {
            "OS keychain (Secret Service)".into()
        }
    }
}

/// A JSON file `{ "<account id>": "<secret>" }`, mode `0600`, replaced
/// atomically on every write. Read-modify-write is serialized across
/// processes (the daemon and the CLI) with a lock on a sibling file.
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
        fs::create_dir_all(dir).map_err(|e| self.err(e))?;
        let mut opts = fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(dir.join(format!("{FILE_STORE_NAME}.lock")))
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
        fs::create_dir_all(dir).map_err(|e| self.err(e))?;
        let tmp = dir.join(format!(".{FILE_STORE_NAME}.{}.tmp", std::process::id()));
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
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

/// Secrets in memory; for tests only. Clones share the same entries, so a
/// test can keep a handle and list what was stored.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore(Arc<Mutex<BTreeMap<String, String>>>);

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every stored (account id, secret).
    pub fn entries(&self) -> BTreeMap<String, String> {
        self.map().clone()
    }
}

impl SecretBackend for MemoryStore {
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>, SecretError> {
        Ok(self.map().get(account).cloned().map(Sensitive::new))
    }

    fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<(), SecretError> {
        self.map()
            .insert(account.to_string(), secret.expose().clone());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        self.map().remove(account);
        Ok(())
    }

    fn describe(&self) -> String {
        "in-memory store (tests only)".into()
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

    #[test]
    fn a_keychain_call_left_unanswered_is_abandoned_and_writes_nothing_later() {
        // Stands in for an unlock prompt nobody answers, answered after all
        // once the caller has given up: the write is skipped (checks
        // `wanted`) or, if it went through, undone.
        for checks_wanted in [true, false] {
            let (answer, prompt) = std::sync::mpsc::channel::<()>();
            let (finished, ended) = std::sync::mpsc::channel::<()>();
            let entry = Arc::new(Mutex::new(None::<String>));
            let written = entry.clone();
            let err = bounded(Duration::from_secs(1), move |wanted| {
                let _ = prompt.recv();
                if checks_wanted && !wanted() {
                    let _ = finished.send(());
                    return (Err(SecretError::Join), None);
                }
                *written.lock().expect("entry") = Some("spor_pat_late".into());
                let undo: Undo = Box::new(move || {
                    *written.lock().expect("entry") = None;
                    let _ = finished.send(());
                });
                (Ok(()), Some(undo))
            })
            .expect_err("no answer in time");
            assert_eq!(
                err.to_string(),
                "the OS keychain refused access (no answer within 1 s; it is probably locked and its unlock prompt went unanswered); unlock it and try again"
            );
            answer.send(()).expect("answer the prompt late");
            ended
                .recv_timeout(Duration::from_secs(10))
                .expect("the late call finished");
            assert_eq!(
                *entry.lock().expect("entry"),
                None,
                "nothing was left written"
            );
        }
        // An answer in time is the call's own result.
        let ok = bounded(Duration::from_secs(10), |_| (Ok(7), None)).expect("in time");
        assert_eq!(ok, 7);
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
