//! One runner per instance: an OS file lock that dies with its holder.
//!
//! The lock is `std::fs::File::try_lock` on `state/locks/<pipeline>/<instance digest>.lock`. The
//! kernel releases it when the holder exits for any reason, SIGKILL included, so a crashed runner
//! never leaves a stale lock. The holder writes its pid, process start time and start time into
//! the file so that a refused runner can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::process;

/// Held for the lifetime of a run; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
#[error("{label} is already being run by another plumb (pid {holder}); lock file {}\n  wait for it to finish, or pass --wait to queue behind it", path.display())]
pub struct LockedError {
    pub label: String,
    pub holder: String,
    pub path: PathBuf,
}

/// Path of the lock for an instance.
pub fn lock_path(state_dir: &Path, pipeline: &str, instance_key: &str) -> PathBuf {
    let digest = Sha256::digest(instance_key.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    state_dir.join("locks").join(pipeline).join(format!("{hex}.lock"))
}

/// Take the instance's lock. Refuse at once when another runner holds it, or with `wait`,
/// block until it is free (`on_wait` is called once, to tell the user).
///
/// The holder's start time is written in `tz`, the pipeline's zone, for the message a second
/// runner shows.
pub fn acquire(
    path: &Path,
    label: &str,
    tz: chrono_tz::Tz,
    wait: bool,
    on_wait: impl FnOnce(&str),
) -> Result<InstanceLock> {
    let io = |e: std::io::Error| Error::Io(format!("cannot use lock file {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = read_holder(&mut file);
            if !wait {
                return Err(Error::Locked(LockedError {
                    label: label.to_string(),
                    holder,
                    path: path.to_path_buf(),
                }));
            }
            on_wait(&holder);
            file.lock().map_err(io)?;
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let me = std::process::id();
    let holder = format!(
        "{me}, started {}, process start {}\n",
        crate::timefmt::at(chrono::Utc::now(), tz),
        process::start_ticks(me).unwrap_or(0)
    );
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(holder.as_bytes()).map_err(io)?;
    Ok(InstanceLock { _file: file })
}

/// Whether the lock file at `path` was written by a runner that is gone: evidence that the state
/// directory was used before. A file being created right now (empty) or held by a live runner
/// is not.
pub fn left_by_a_gone_runner(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let mut fields = text.trim().split(", ");
    let pid = fields.next().and_then(|p| p.parse::<u32>().ok());
    let start = fields
        .find_map(|f| f.strip_prefix("process start "))
        .and_then(|t| t.parse::<u64>().ok());
    match (pid, start) {
        (Some(pid), Some(start)) => !process::same_process_alive(pid, start),
        _ => false,
    }
}

/// What the holder wrote. It writes right after locking; give it a moment if empty.
fn read_holder(file: &mut File) -> String {
    for _ in 0..20 {
        let mut s = String::new();
        if file.rewind().is_ok() && file.read_to_string(&mut s).is_ok() && !s.trim().is_empty() {
            return s.trim().to_string();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    "unknown".to_string()
}
