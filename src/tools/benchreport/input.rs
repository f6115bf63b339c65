//! Reading a raw results directory written by `scripts/bench.sh`: `meta.tsv` (key, value),
//! `runs.tsv` (one line per run) and the client reports and fleet samples the runs name.
//!
//! Must never invent a figure: a field the script left empty stays `None`, and a file that is
//! missing or malformed is an error naming it, not a run silently left out.

use std::path::{Path, PathBuf};

use super::error::BenchReportError;
use super::model::{ClientReport, FleetSample, Run, Target, Workload};

/// Everything in a raw results directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RawResults {
    /// `meta.tsv` in file order.
    pub meta: Vec<(String, String)>,
    pub runs: Vec<Run>,
}

impl RawResults {
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `dir` (meta.tsv, runs.tsv and the files runs.tsv names).
pub fn read_dir(dir: &Path) -> Result<RawResults, BenchReportError> {
    let meta_path = dir.join("meta.tsv");
    let meta = parse_meta(&read(&meta_path)?);
    let runs_path = dir.join("runs.tsv");
    let mut runs = Vec::new();
    for line in parse_runs(&read(&runs_path)?, &runs_path)? {
        let client_path = dir.join(&line.client);
        let client = serde_json::from_str(&read(&client_path)?).map_err(|source| {
            BenchReportError::Json {
                path: client_path,
                source,
            }
        })?;
        let samples = match &line.samples {
            Some(name) => {
                let path = dir.join(name);
                parse_samples(&read(&path)?, &path)?
            }
            None => Vec::new(),
        };
        runs.push(line.into_run(client, samples));
    }
    Ok(RawResults { meta, runs })
}

fn read(path: &Path) -> Result<String, BenchReportError> {
    std::fs::read_to_string(path).map_err(|source| BenchReportError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_meta(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A line of runs.tsv before its files are read.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    pub workload: Workload,
    pub target: Target,
    pub round: u32,
    pub client: PathBuf,
    pub cpu_user_s: Option<f64>,
    pub cpu_sys_s: Option<f64>,
    pub rss_before_kb: Option<u64>,
    pub rss_held_kb: Option<u64>,
    pub held: Option<u64>,
    pub samples: Option<PathBuf>,
}

impl RunLine {
    fn into_run(self, client: ClientReport, samples: Vec<FleetSample>) -> Run {
        Run {
            workload: self.workload,
            target: self.target,
            round: self.round,
            client,
            cpu_user_s: self.cpu_user_s,
            cpu_sys_s: self.cpu_sys_s,
            rss_before_kb: self.rss_before_kb,
            rss_held_kb: self.rss_held_kb,
            held: self.held,
            samples,
        }
    }
}

/// A tab-separated table with a header line; cells are looked up by column name.
struct Tsv<'a> {
    path: &'a Path,
    columns: Vec<&'a str>,
}

impl<'a> Tsv<'a> {
    fn cell<'b>(&self, cells: &[&'b str], name: &str) -> Option<&'b str> {
        let i = self.columns.iter().position(|c| *c == name)?;
        cells.get(i).map(|c| c.trim()).filter(|c| !c.is_empty())
    }

    fn need<'b>(
        &self,
        cells: &[&'b str],
        name: &str,
        line: usize,
    ) -> Result<&'b str, BenchReportError> {
        self.cell(cells, name)
            .ok_or_else(|| self.bad(line, format!("no {name}")))
    }

    fn number<T: std::str::FromStr>(
        &self,
        cells: &[&str],
        name: &str,
        line: usize,
    ) -> Result<Option<T>, BenchReportError> {
        match self.cell(cells, name) {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| self.bad(line, format!("{name} is not a number: {text:?}"))),
        }
    }

    fn bad(&self, line: usize, reason: String) -> BenchReportError {
        BenchReportError::Table {
            path: self.path.to_path_buf(),
            line,
            reason,
        }
    }
}

/// Parses runs.tsv (header line first).
pub fn parse_runs(text: &str, path: &Path) -> Result<Vec<RunLine>, BenchReportError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let columns = match lines.next() {
        Some((_, header)) => header.split('\t').map(str::trim).collect(),
        None => Vec::new(),
    };
    let tsv = Tsv { path, columns };
    let mut out = Vec::new();
    for (i, text) in lines {
        let line = i + 1;
        let cells: Vec<&str> = text.split('\t').collect();
        let workload = tsv.need(&cells, "workload", line)?;
        let workload = Workload::parse(workload)
            .ok_or_else(|| tsv.bad(line, format!("unknown workload {workload:?}")))?;
        let target = tsv.need(&cells, "target", line)?;
        let target = Target::parse(target)
            .ok_or_else(|| tsv.bad(line, format!("unknown target {target:?}")))?;
        let round = tsv
            .number(&cells, "round", line)?
            .ok_or_else(|| tsv.bad(line, "no round".into()))?;
        out.push(RunLine {
            workload,
            target,
            round,
            client: PathBuf::from(tsv.need(&cells, "client", line)?),
            cpu_user_s: tsv.number(&cells, "cpu_user_s", line)?,
            cpu_sys_s: tsv.number(&cells, "cpu_sys_s", line)?,
            rss_before_kb: tsv.number(&cells, "rss_before_kb", line)?,
            rss_held_kb: tsv.number(&cells, "rss_held_kb", line)?,
            held: tsv.number(&cells, "held", line)?,
            samples: tsv.cell(&cells, "samples").map(PathBuf::from),
        });
    }
    Ok(out)
}

/// Parses a fleet samples file (header line first).
pub fn parse_samples(text: &str, path: &Path) -> Result<Vec<FleetSample>, BenchReportError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let columns = match lines.next() {
        Some((_, header)) => header.split('\t').map(str::trim).collect(),
        None => Vec::new(),
    };
    let tsv = Tsv { path, columns };
    let mut out = Vec::new();
    for (i, text) in lines {
        let line = i + 1;
        let cells: Vec<&str> = text.split('\t').collect();
        let num = |name: &str| -> Result<u64, BenchReportError> {
            tsv.number(&cells, name, line)?
                .ok_or_else(|| tsv.bad(line, format!("no {name}")))
        };
        out.push(FleetSample {
            t_ms: num("t_ms")?,
            backend: tsv.need(&cells, "backend", line)?.to_string(),
            capacity: num("capacity")?,
            running: num("running")?,
            waiting: num("waiting")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_table_keeps_empty_fields_empty() {
        let text = "workload\ttarget\tround\tclient\tcpu_user_s\tcpu_sys_s\trss_before_kb\trss_held_kb\theld\tsamples\n\
                    bulk\tdirect\t1\tbulk-direct-1.json\t\t\t\t\t\t\n\
                    idle\tringlb\t2\tidle-ringlb-2.json\t0.030\t0.870\t37976\t40860\t9500\t\n";
        let runs = parse_runs(text, Path::new("runs.tsv")).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].target, Target::Direct);
        assert_eq!(runs[0].cpu_user_s, None);
        assert_eq!(runs[1].workload, Workload::Idle);
        assert_eq!(runs[1].round, 2);
        assert_eq!(runs[1].cpu_sys_s, Some(0.87));
        assert_eq!(runs[1].held, Some(9500));
        assert_eq!(runs[1].samples, None);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let text = "workload\ttarget\tround\tclient\nbulk\tenvoy\t1\tx.json\n";
        let err = parse_runs(text, Path::new("runs.tsv")).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let text = "workload\ttarget\tround\tclient\tcpu_user_s\nbulk\tringlb\t1\tx.json\tlots\n";
        assert!(parse_runs(text, Path::new("runs.tsv")).is_err());
    }

    #[test]
    fn wrk_and_ringlb_load_reports_read_alike() {
        let wrk = r#"{"tool":"wrk","duration_s":3.0,"requests":10,"ok":9,"errors":{"total":1,"status":1},
                     "bytes":100,"request":{"count":10,"p50":300,"p99":4000,"max":5000,"mean":1.0}}"#;
        let r: ClientReport = serde_json::from_str(wrk).unwrap();
        assert_eq!((r.ok, r.errors.total, r.request.p99), (9, 1, 4000.0));
        let load = r#"{"mode":"idle","duration_s":1.5,"requests":5,"ok":5,"errors":{"total":0,"connect":0},
                      "closed_early":2,"ttft":{"count":0,"p50":0,"p99":0},"backends":{}}"#;
        let r: ClientReport = serde_json::from_str(load).unwrap();
        assert_eq!((r.ok, r.closed_early, r.bytes), (5, 2, 0));
    }

    #[test]
    fn samples_parse() {
        let text = "t_ms\tbackend\tcapacity\trunning\twaiting\n10\tgpu0\t100\t80\t3\n";
        let s = parse_samples(text, Path::new("s.tsv")).unwrap();
        assert_eq!(s[0].backend, "gpu0");
        assert_eq!((s[0].capacity, s[0].running, s[0].waiting), (100, 80, 3));
    }
}
