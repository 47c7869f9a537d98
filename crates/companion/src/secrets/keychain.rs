//! The OS keychain through the `keyring` crate. Every call runs on a thread
//! of its own and is bounded in time, because an unlock prompt nobody
//! answers would otherwise hold its caller forever.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::backend::{SecretBackend, SecretError, Vault};
use crate::sensitive::Sensitive;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
