//! `--request-log FILE`: one JSON line per finished request (ok or failed), with wall-clock
//! times, so a run can be laid next to other logs of the same machine (a balancer's access
//! log, the moment a backend was killed) and each failure placed in time and on its backend.
//! Must never lose or invent a line: every request the report counts is one line, written in
//! the order requests finish, and a write error is reported at the end of the run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::error::{LoadError, RequestError};
use super::stats::Sample;

/// One line of the request log. Times are Unix seconds (microsecond precision).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLogEntry {
    /// Intended start (open loop) or when the request began; the connect's start when the
    /// connect failed. Absent for idle-mode failures, which have no request.
    pub start: Option<f64>,
    /// First byte of the response, if one came.
    pub first_byte: Option<f64>,
    /// First token (sse, websocket), if one came.
    pub first_token: Option<f64>,
    /// When the request was recorded as done or failed.
    pub end: f64,
    pub ok: bool,
    /// The error kind (`connect`, `timeout`, `protocol`, `closed`, `mismatch`) of a failure.
    pub error: Option<String>,
    /// What went wrong, as in the report's error samples.
    pub detail: Option<String>,
    /// The backend header's value, when the response head carried it.
    pub backend: Option<String>,
    pub tokens: u64,
    /// The `max_tokens` the stream asked for (sse, websocket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
}

/// The open request log of a run: a buffered file behind a lock (one short write per request).
pub struct RequestLog {
    path: PathBuf,
    out: Mutex<Writer>,
    /// The same moment on both clocks, to turn an [`Instant`] into Unix time.
    base: Instant,
    base_unix: f64,
}

struct Writer {
    file: BufWriter<File>,
    /// The first write error; later lines are dropped and the run reports it at the end.
    failed: Option<std::io::Error>,
}

impl RequestLog {
    pub fn create(path: &Path) -> Result<Self, LoadError> {
        let file = File::create(path).map_err(|source| LoadError::WriteRequestLog {
            path: path.to_path_buf(),
            source,
        })?;
        let base = Instant::now();
        let base_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Ok(RequestLog {
            path: path.to_path_buf(),
            out: Mutex::new(Writer {
                file: BufWriter::new(file),
                failed: None,
            }),
            base,
            base_unix,
        })
    }

    /// `at` in Unix seconds, rounded to the microsecond.
    pub fn unix(&self, at: Instant) -> f64 {
        let secs = match at.checked_duration_since(self.base) {
            Some(after) => self.base_unix + after.as_secs_f64(),
            None => self.base_unix - self.base.duration_since(at).as_secs_f64(),
        };
        (secs * 1e6).round() / 1e6
    }

    /// The line for a request that ended at `end`: ok when `error` is `None`.
    pub fn entry(
        &self,
        sample: &Sample,
        end: Instant,
        error: Option<&RequestError>,
    ) -> RequestLogEntry {
        RequestLogEntry {
            start: sample.started.map(|t| self.unix(t)),
            first_byte: sample.first_byte.map(|t| self.unix(t)),
            first_token: sample.first_token.map(|t| self.unix(t)),
            end: self.unix(end),
            ok: error.is_none(),
            error: error.map(|e| e.kind.to_string()),
            detail: error.map(|e| e.detail.clone()),
            backend: sample.backend.clone(),
            tokens: sample.tokens,
            max_tokens: sample.max_tokens,
        }
    }

    /// Writes one line (dropped once a write has failed).
    pub fn record(&self, sample: &Sample, end: Instant, error: Option<&RequestError>) {
        let entry = self.entry(sample, end, error);
        let mut out = self.out.lock();
        if out.failed.is_some() {
            return;
        }
        let line = serde_json::to_string(&entry).unwrap_or_default();
        let w = &mut out.file;
        if let Err(e) = w
            .write_all(line.as_bytes())
            .and_then(|()| w.write_all(b"\n"))
        {
            out.failed = Some(e);
        }
    }

    /// Flushes the file; the first write error of the run, if any, is the error.
    pub fn finish(&self) -> Result<(), LoadError> {
        let mut out = self.out.lock();
        let flushed = out.file.flush();
        match out.failed.take().map_or(flushed, Err) {
            Ok(()) => Ok(()),
            Err(source) => Err(LoadError::WriteRequestLog {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::error::ErrorKind;
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("ringlb-reqlog-{}-{name}", std::process::id()))
    }

    #[test]
    fn instants_map_to_unix_time_both_ways() {
        let path = temp("clock");
        let log = RequestLog::create(&path).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((log.unix(Instant::now()) - now).abs() < 0.5);
        let later = log.base + Duration::from_millis(1500);
        assert!((log.unix(later) - log.base_unix - 1.5).abs() < 1e-5);
        if let Some(earlier) = log.base.checked_sub(Duration::from_millis(250)) {
            assert!((log.base_unix - log.unix(earlier) - 0.25).abs() < 1e-5);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn one_line_per_request_with_its_backend_and_error() {
        let path = temp("lines");
        let log = RequestLog::create(&path).unwrap();
        let t0 = Instant::now();
        let mut ok = Sample {
            started: Some(t0),
            backend: Some("gpu-a".into()),
            ..Sample::default()
        };
        ok.mark_first_byte();
        ok.add_tokens(5);
        log.record(&ok, t0 + Duration::from_millis(20), None);
        let cut = Sample {
            started: Some(t0),
            backend: Some("gpu-b".into()),
            tokens: 2,
            ..Sample::default()
        };
        let err = RequestError::new(ErrorKind::Closed, "stream ended (2 events, no [DONE])");
        log.record(&cut, t0 + Duration::from_millis(30), Some(&err));
        log.record(&Sample::default(), t0, Some(&RequestError::protocol("x")));
        log.finish().unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<RequestLogEntry> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ok && lines[0].error.is_none() && lines[0].tokens == 5);
        assert_eq!(lines[0].backend.as_deref(), Some("gpu-a"));
        assert!(lines[0].first_byte.is_some() && lines[0].first_token.is_some());
        assert!((lines[0].end - lines[0].start.unwrap() - 0.02).abs() < 1e-5);
        assert!(!lines[1].ok);
        assert_eq!(lines[1].error.as_deref(), Some("closed"));
        assert_eq!(lines[1].backend.as_deref(), Some("gpu-b"));
        assert!(lines[1].detail.as_deref().unwrap().contains("no [DONE]"));
        assert_eq!(lines[1].first_byte, None);
        assert_eq!(
            (lines[2].start, lines[2].error.as_deref()),
            (None, Some("protocol"))
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_an_error() {
        let path = Path::new("/nonexistent-dir-ringlb/requests.jsonl");
        assert!(matches!(
            RequestLog::create(path),
            Err(LoadError::WriteRequestLog { .. })
        ));
    }
}
