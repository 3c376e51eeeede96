//! The compiled-pipeline cache: a checked pipeline, stored in the state directory, keyed by
//! everything it was built from.
//!
//! Parsing and checking a large pipeline file costs far more than deciding what to run: at
//! 10,000 tasks the TOML parse, the per-section reading and the graph build took 46 ms of a
//! 75 ms resume pass. A pipeline that loaded without a problem is stored here; the next load
//! that finds the same key reads it back instead.
//!
//! The key is a SHA-256 of this format's version, the plumb executable (path, size and
//! modification time: a rebuilt plumb never reads an older build's layout), the pipeline file's
//! path and bytes, and the project file's bytes. Any change to any of them is a miss, and a miss
//! (or an unreadable entry) just loads the file as usual. Entries are written to a temporary
//! file and renamed into place, so a reader sees a whole entry or none.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Pipeline;
use crate::diag::FileDiagnostics;
use crate::project::Project;

const FORMAT: &[u8] = b"plumb compiled pipeline 2\0";
const KEY_LEN: usize = 32;

/// Load the pipeline at `path`, from the cache when it holds this exact pipeline.
pub fn load(path: &Path, display: &Path, project: &Project) -> Result<Pipeline, Box<FileDiagnostics>> {
    let entry = entry_path(project, path);
    // The lookup hashes the file as it streams by: a hit never holds the whole text in memory
    // (a 10,000-task file is 700 KB, read and checked as UTF-8 for nothing).
    if let Some(entry) = &entry
        && let Some(key) = key(path, &project.root, Content::File(path))
        && let Some(p) = read(entry, &key)
    {
        return Ok(p);
    }
    let text = super::read_text(path, display)?;
    // Stored under the key of the text it is built from, whatever the file holds by now.
    let key = entry
        .as_ref()
        .and_then(|_| key(path, &project.root, Content::Text(&text)));
    let pipeline = Pipeline::from_text(path, display, text, &project.config)?;
    if let (Some(entry), Some(key)) = (&entry, &key) {
        // A cache that cannot be written (read-only state, full disk) only costs speed.
        let _ = write(entry, key, &pipeline);
    }
    Ok(pipeline)
}

/// The pipeline file's bytes, for the key: read from the file, or already in hand.
enum Content<'a> {
    File(&'a Path),
    Text(&'a str),
}

/// Where the entry for `path` lives: only in a state directory that already exists, so that
/// commands which only read (`graph`, `next`) never create one.
fn entry_path(project: &Project, path: &Path) -> Option<PathBuf> {
    if !project.state_dir.is_dir() {
        return None;
    }
    let name = path.file_stem()?.to_str()?;
    Some(project.state_dir.join("cache").join(format!("{name}.pipeline")))
}

fn key(path: &Path, root: &Path, content: Content<'_>) -> Option<[u8; KEY_LEN]> {
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(&exe).ok()?;
    let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
    let project_text = match std::fs::read(root.join(crate::project::PROJECT_FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(_) => return None,
    };
    let mut h = Sha256::new();
    // Each part is length-prefixed, so no two different inputs hash the same bytes; the
    // pipeline's bytes come last, followed by their length.
    for part in [
        FORMAT,
        exe.as_os_str().as_encoded_bytes(),
        &meta.len().to_le_bytes(),
        &mtime.as_nanos().to_le_bytes(),
        path.as_os_str().as_encoded_bytes(),
        &project_text,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let len = match content {
        Content::Text(text) => {
            h.update(text.as_bytes());
            text.len() as u64
        }
        Content::File(file) => {
            let mut f = std::fs::File::open(file).ok()?;
            let mut buf = [0u8; 16 * 1024];
            let mut len = 0u64;
            loop {
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        h.update(&buf[..n]);
                        len += n as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return None,
                }
            }
            len
        }
    };
    h.update(len.to_le_bytes());
    Some(h.finalize().into())
}

fn read(entry: &Path, key: &[u8; KEY_LEN]) -> Option<Pipeline> {
    let bytes = std::fs::read(entry).ok()?;
    let (stored, body) = bytes.split_at_checked(KEY_LEN)?;
    if stored != key {
        return None;
    }
    postcard::from_bytes(body).ok()
}

fn write(entry: &Path, key: &[u8; KEY_LEN], pipeline: &Pipeline) -> std::io::Result<()> {
    let body = postcard::to_stdvec(pipeline).map_err(std::io::Error::other)?;
    let dir = entry.parent().expect("an entry is inside the cache directory");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}",
        std::process::id(),
        entry.file_name().unwrap().to_string_lossy()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(key)?;
    f.write_all(&body)?;
    drop(f);
    std::fs::rename(&tmp, entry).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
