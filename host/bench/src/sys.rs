//! What the bench reads from and asks of the operating system: a process's RSS and CPU time
//! from /proc, the machine's description and load, the open-file limit, and polite termination.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// Resident set size of process `pid` in KiB (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kib = rest.trim().trim_end_matches("kB").trim();
            return kib
                .parse()
                .with_context(|| format!("parsing VmRSS {rest:?}"));
        }
    }
    bail!("no VmRSS in /proc/{pid}/status")
}

/// User plus system CPU time of process `pid` (all its threads), in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU seconds of the threads of process `pid` named `name` (e.g. a runtime's workers).
pub fn threads_cpu_seconds(pid: u32, name: &str) -> Result<f64> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0.0;
    for task in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = task?.path();
        let named = std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim() == name);
        if named {
            // A thread that ended meanwhile just stops counting.
            total += stat_cpu_seconds(&path.join("stat").to_string_lossy()).unwrap_or(0.0);
        }
    }
    Ok(total)
}

/// User plus system CPU seconds from a `/proc/.../stat` file (a process or one thread).
fn stat_cpu_seconds(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // The command name may hold spaces or parentheses; the fields we want follow the last ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')': state is field 3 of the man page, so utime (14) and stime (15) are at 11 and 12.
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        bail!("short {path}");
    };
    let ticks: u64 = utime.parse::<u64>()? + stime.parse::<u64>()?;
    Ok(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// CPU time the whole machine spent busy (everything but idle and iowait), in seconds.
pub fn machine_busy_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Ok(busy as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// CPU seconds of every process whose command name is `comm` (e.g. PostgreSQL's backends).
pub fn cpu_by_name(comm: &str) -> HashMap<u32, f64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let matches =
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm);
        if let (true, Ok(secs)) = (matches, cpu_seconds(pid)) {
            out.insert(pid, secs);
        }
    }
    out
}

/// A reading of CPU time: the server, this process, PostgreSQL's processes and the whole
/// machine, to turn into cores used over an interval.
pub struct CpuSample {
    at: Instant,
    /// Summed over the server's processes (several with `--nodes`).
    server: Option<f64>,
    bench: Option<f64>,
    postgres: HashMap<u32, f64>,
    machine: Option<f64>,
}

/// Cores used over an interval (CPU seconds per wall second).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cores {
    pub server: Option<f64>,
    pub bench: Option<f64>,
    /// PostgreSQL's processes (0 when it is idle or not running).
    pub postgres: f64,
    pub machine: Option<f64>,
}

impl CpuSample {
    pub fn take(server: Option<u32>) -> Self {
        Self::take_all(server.as_slice())
    }

    /// Like [`CpuSample::take`], the server side summed over several processes (none: unknown).
    pub fn take_all(servers: &[u32]) -> Self {
        let server = servers
            .iter()
            .map(|&p| cpu_seconds(p).ok())
            .sum::<Option<f64>>()
            .filter(|_| !servers.is_empty());
        Self {
            at: Instant::now(),
            server,
            bench: cpu_seconds(std::process::id()).ok(),
            postgres: cpu_by_name("postgres"),
            machine: machine_busy_seconds().ok(),
        }
    }

    pub fn cores_until(&self, later: &CpuSample) -> Cores {
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let rate = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / wall);
        let postgres: f64 = later
            .postgres
            .iter()
            .filter_map(|(pid, b)| self.postgres.get(pid).map(|a| b - a))
            .sum();
        Cores {
            server: rate(self.server, later.server),
            bench: rate(self.bench, later.bench),
            postgres: postgres / wall,
            machine: rate(self.machine, later.machine),
        }
    }
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_mib: u64,
    pub kernel: String,
}

impl Machine {
    pub fn describe() -> Self {
        let nproc = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']))
            })
            .unwrap_or("unknown")
            .to_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Self {
            nproc,
            cpu_model,
            mem_total_mib,
            kernel,
        }
    }
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), as the kernel prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Raises this process's open-file limit so that it allows at least `want` descriptors,
/// raising the hard limit too when allowed (root). Child processes inherit the result.
/// Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let old = getrlimit(Resource::Nofile);
    let hard = old.maximum.unwrap_or(u64::MAX);
    if hard < want {
        let both = Rlimit {
            current: Some(want),
            maximum: Some(want),
        };
        if setrlimit(Resource::Nofile, both).is_ok() {
            return want;
        }
    }
    let soft = want.min(hard).max(old.current.unwrap_or(0));
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(soft),
            maximum: old.maximum,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The local port range connections to one address draw from.
pub fn ephemeral_ports() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = s.split_whitespace().filter_map(|x| x.parse().ok());
    Some((it.next()?, it.next()?))
}

/// Sends SIGTERM to `pid`.
pub fn terminate(pid: u32) -> Result<()> {
    let raw = i32::try_from(pid).context("pid out of range")?;
    let pid = rustix::process::Pid::from_raw(raw).context("pid 0")?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).context("kill(SIGTERM)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_rss_and_cpu() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        let main = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
        assert!(threads_cpu_seconds(me, main.trim()).unwrap() >= 0.0);
        assert_eq!(threads_cpu_seconds(me, "no-such-thread").unwrap(), 0.0);
        assert!(machine_busy_seconds().unwrap() > 0.0);
        assert_eq!(load_average().split(' ').count(), 3);
    }

    #[test]
    fn describes_machine() {
        let m = Machine::describe();
        assert!(m.nproc >= 1);
    }
}
