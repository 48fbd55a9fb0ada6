//! The witness's append-only file, `<state_dir>/checkpoints.ndjson`: one JSON line per
//! cosigned checkpoint ([`Record`]), written and fsynced before the cosignature is answered.
//! The state (the newest record per origin) is rebuilt from it at startup: the last line of an
//! origin wins. A torn last line (a crash mid-append) is cut off with a warning; any other line
//! that does not read stops startup (the file is evidence, it is never silently repaired).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's name in `state_dir`.
pub const FILE_NAME: &str = "checkpoints.ndjson";

/// One cosigned checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The log's origin.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash, base64.
    pub root: String,
    /// The signed checkpoint note as received.
    pub note: String,
    /// The witness's cosignature line (without its line break).
    pub cosignature: String,
    /// When it was cosigned, unix seconds (the cosignature's timestamp).
    pub time: u64,
}

/// Why the file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// An I/O error on the file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A complete line that is not a record (not the torn last line of a crash).
    #[error("{path} line {line}: not a checkpoint record: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        why: String,
    },
}

/// The open file (appends only).
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl StateFile {
    /// Opens (creating `dir` and the file when missing) and reads it: the newest record per
    /// origin, in file order.
    pub fn open(dir: &Path) -> Result<(StateFile, HashMap<String, Record>), StateError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&path))?;
        let (latest, good_len) = read_records(&path, &bytes)?;
        if good_len < bytes.len() as u64 {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = bytes.len() as u64 - good_len,
                "the last line of the witness file is torn (a crash while appending); cutting it off"
            );
            file.set_len(good_len).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io(&path))?;
        // The directory entry of a new file survives a crash only once the directory is synced.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok((
            StateFile {
                path,
                file,
                len: good_len,
            },
            latest,
        ))
    }

    /// Appends `record` as one line and fsyncs it. On an error the caller must not answer the
    /// cosignature (a partial line is cut off, here or at the next start).
    pub fn append(&mut self, record: &Record) -> Result<(), StateError> {
        let mut line = serde_json::to_vec(record).map_err(|e| StateError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        line.push(b'\n');
        let path = &self.path;
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Cut a partial line off so the next append starts a whole line.
            let _ = self.file.set_len(self.len);
            return Err(io(e));
        }
        self.len += line.len() as u64;
        Ok(())
    }

    /// Bytes of complete, synced lines (what `GET /log` may serve).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no record was ever written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The newest record per origin and the length of the readable prefix (everything but a torn
/// last line).
fn read_records(path: &Path, bytes: &[u8]) -> Result<(HashMap<String, Record>, u64), StateError> {
    let mut latest = HashMap::new();
    let mut offset = 0usize;
    let mut number = 0usize;
    while offset < bytes.len() {
        number += 1;
        let rest = &bytes[offset..];
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], offset + i + 1),
            None => (rest, bytes.len()),
        };
        let is_last = next == bytes.len();
        match serde_json::from_slice::<Record>(line) {
            Ok(r) if rest.len() > line.len() => {
                latest.insert(r.origin.clone(), r);
            }
            // No line break: the append was cut (the newline is its last byte).
            Ok(_) => return Ok((latest, offset as u64)),
            Err(_) if is_last => return Ok((latest, offset as u64)),
            Err(e) => {
                return Err(StateError::Corrupt {
                    path: path.to_path_buf(),
                    line: number,
                    why: e.to_string(),
                })
            }
        }
        offset = next;
    }
    Ok((latest, offset as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(origin: &str, size: u64) -> Record {
        Record {
            origin: origin.into(),
            size,
            root: "AAAA".into(),
            note: "n".into(),
            cosignature: "c".into(),
            time: 1,
        }
    }

    #[test]
    fn the_last_line_per_origin_wins_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut f, latest) = StateFile::open(dir.path()).unwrap();
            assert!(latest.is_empty() && f.is_empty());
            f.append(&rec("a", 1)).unwrap();
            f.append(&rec("b", 5)).unwrap();
            f.append(&rec("a", 3)).unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let good = std::fs::read(&path).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(br#"{"origin":"a","size":9"#);
        std::fs::write(&path, &torn).unwrap();
        let (mut f, latest) = StateFile::open(dir.path()).unwrap();
        assert_eq!(latest["a"].size, 3);
        assert_eq!(latest["b"].size, 5);
        assert_eq!(std::fs::read(&path).unwrap(), good);
        assert_eq!(f.len(), good.len() as u64);
        // Appends after the cut make whole lines.
        f.append(&rec("a", 4)).unwrap();
        drop(f);
        let (_, latest) = StateFile::open(dir.path()).unwrap();
        assert_eq!(latest["a"].size, 4);
    }

    #[test]
    fn a_bad_line_before_the_end_stops_startup() {
        let dir = tempfile::tempdir().unwrap();
        let line = serde_json::to_string(&rec("a", 1)).unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            format!("{line}\nnot json\n{line}\n"),
        )
        .unwrap();
        let err = StateFile::open(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::Corrupt { line: 2, .. }), "{err}");
    }
}
