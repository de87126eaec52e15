//! What each process of the system has used, read from `/proc`: CPU time and resident memory.

use anyhow::Context;
use livesessions_system::{Process, System};
use std::time::Duration;

/// CPU time and resident memory of one process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessUsage {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Resident set size (`VmRSS`), in bytes.
    pub rss: u64,
}

impl ProcessUsage {
    /// Reads `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status` (VmRSS).
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The fields after the command name, which is in parentheses and may hold spaces:
        // state is field 3, utime 14 and stime 15.
        let after_name = stat.rsplit_once(')').context("a /proc stat line")?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // SAFETY: sysconf(3) reads a constant of the system.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next())
            .context("VmRSS in /proc status")?
            .parse()?;
        Ok(Self {
            cpu: Duration::from_secs_f64(ticks as f64 / per_second as f64),
            rss: rss_kib * 1024,
        })
    }
}

/// Every process's usage at one moment, in [`Process::ALL`] order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage([ProcessUsage; 3]);

impl Usage {
    /// Every process's CPU time and memory now.
    pub fn of_system(system: &System) -> anyhow::Result<Self> {
        let mut usage = Usage::default();
        for (slot, process) in usage.0.iter_mut().zip(Process::ALL) {
            *slot = ProcessUsage::read(system.pid(process))?;
        }
        Ok(usage)
    }

    /// The usage of `process`.
    pub fn of(&self, process: Process) -> ProcessUsage {
        self.0[Process::ALL.iter().position(|p| *p == process).expect("one of ALL")]
    }

    /// CPU time `process` used between `earlier` and this sample.
    pub fn cpu_since(&self, earlier: &Usage, process: Process) -> Duration {
        self.of(process).cpu.saturating_sub(earlier.of(process).cpu)
    }
}
