//! Peak memory of every engine process over the whole run, sampled from
//! `/proc/PID/status` every 50 ms: `RssAnon` (heap, the target) and
//! `RssFile` (mapped files, e.g. mmap'd segments, which the kernel can drop)
//! separately. Peaks are per engine label across all of its processes
//! (strata restarts, promtool then prometheus), each field on its own.
//! A pid may be watched under several labels (an engine, and one phase of
//! it). A spike shorter than the period can be missed; `VmHWM` is not used
//! because it mixes the two kinds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default)]
pub struct Peak {
    pub anon_kib: u64,
    pub file_kib: u64,
}

#[derive(Default)]
struct Shared {
    watched: Vec<(String, u32)>,
    peaks: BTreeMap<String, Peak>,
}

pub struct Sampler {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// `RssAnon` and `RssFile` in KiB, None when the process is gone.
pub fn read_status(pid: u32) -> Option<Peak> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(Peak { anon_kib: field("RssAnon:")?, file_kib: field("RssFile:")? })
}

impl Sampler {
    pub fn start() -> Sampler {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (shared.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                if let Ok(mut g) = s.lock() {
                    let watched = g.watched.clone();
                    for (label, pid) in watched {
                        if let Some(now) = read_status(pid) {
                            let p = g.peaks.entry(label).or_default();
                            p.anon_kib = p.anon_kib.max(now.anon_kib);
                            p.file_kib = p.file_kib.max(now.file_kib);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler { shared, stop, thread: Some(thread) }
    }

    /// Samples `pid` under `label` from now on (until it exits).
    pub fn watch(&self, label: &str, pid: u32) {
        if let Ok(mut g) = self.shared.lock() {
            g.watched.retain(|(_, p)| std::path::Path::new(&format!("/proc/{p}")).exists());
            g.watched.push((label.to_string(), pid));
            g.peaks.entry(label.to_string()).or_default();
        }
    }

    pub fn peaks(&self) -> BTreeMap<String, Peak> {
        self.shared.lock().map(|g| g.peaks.clone()).unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let p = super::read_status(std::process::id()).expect("/proc/self/status has RssAnon and RssFile");
        assert!(p.anon_kib > 0);
    }
}
