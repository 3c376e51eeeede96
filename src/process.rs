//! Facts about processes read from /proc, and signalling process groups.
//!
//! A pid alone does not identify a process: pids are reused. A process is identified by its pid
//! together with its start time (field 22 of /proc/PID/stat, in clock ticks since boot), which is
//! what the state records for runners and for each attempt's process group leader.

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The fields of /proc/PID/stat that plumb uses.
#[derive(Debug, Clone, Copy)]
struct Stat {
    /// `Z` for a zombie.
    state: char,
    pgid: u32,
    /// Clock ticks since boot.
    start: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    // `fields[0]` is field 3 (state); the group is field 5, the start time field 22.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgid: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The start time of process `pid` in clock ticks since boot, if it exists.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.start)
}

/// The clock-tick count since boot now, in the unit of a process's start time.
///
/// The kernel stamps a new process with CLOCK_BOOTTIME while it clones it and /proc shows that
/// stamp divided down to clock ticks (10 ms). So if this reads the same before and after a
/// spawn, that is the child's start time, known without reading /proc (which cost the runner an
/// eighth of its time per task). Spawns straddling a tick boundary read /proc instead.
pub fn boot_ticks_now() -> Option<u64> {
    static NS_PER_TICK: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let per_tick = (*NS_PER_TICK.get_or_init(|| {
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()?;
        (hz > 0 && 1_000_000_000 % hz == 0).then(|| 1_000_000_000 / hz as u64)
    }))?;
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    let ns = now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64;
    Some(ns / per_tick)
}

/// Whether the process that had `pid` and started at `ticks` is still alive (and not a zombie).
pub fn same_process_alive(pid: u32, ticks: u64) -> bool {
    stat(pid).is_some_and(|s| s.start == ticks && s.state != 'Z')
}

/// Pids of every process, from /proc.
fn all_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
}

/// Send `sig` to process group `pgid`. Returns false when the group no longer exists.
pub fn signal_group(pgid: u32, sig: Signal) -> bool {
    match killpg(Pid::from_raw(pgid as i32), sig) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(_) => true,
    }
}

/// Whether a live (non-zombie) process is still in group `pgid`. The cheap signal-0 probe
/// answers the common case (the group is gone); only when it says yes is /proc scanned, because
/// zombies awaiting their reaper also answer signal 0.
pub fn group_alive(pgid: u32) -> bool {
    if !matches!(
        killpg(Pid::from_raw(pgid as i32), None),
        Ok(()) | Err(Errno::EPERM)
    ) {
        return false;
    }
    all_pids().any(|pid| stat(pid).is_some_and(|s| s.pgid == pgid && s.state != 'Z'))
}

/// This host's name, for run records and alerts.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Process groups of live processes whose environment has `var` set to one of `values`, with
/// one example pid each. Every task process inherits `PLUMB_RUN_ID`, so this finds what a dead
/// runner's attempts left behind even when the runner died between starting a task and
/// recording its process group, and even descendants that moved to groups of their own.
/// Processes of other users (unreadable environ) and zombies are skipped. `scope` is a second
/// variable that must hold exactly that value (the state's id: run ids are unique only within
/// one database, so this keeps one project's recovery off another's tasks).
pub fn groups_with_env(
    var: &str,
    values: &std::collections::HashSet<String>,
    scope: (&str, &str),
) -> Vec<(u32, u32)> {
    let me = std::process::id();
    let my_group = nix::unistd::getpgrp().as_raw() as u32;
    let mut groups: Vec<(u32, u32)> = Vec::new();
    for pid in all_pids() {
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !env_value(&env, var).is_some_and(|v| values.contains(v))
            || env_value(&env, scope.0) != Some(scope.1)
        {
            continue;
        }
        let Some(st) = stat(pid) else { continue };
        if st.state != 'Z' && st.pgid != my_group && !groups.iter().any(|(g, _)| *g == st.pgid) {
            groups.push((st.pgid, pid));
        }
    }
    groups
}

/// Make this process the reaper of its descendants' orphans (Linux's child subreaper): a task
/// process whose parent exits, even one that moved to a session of its own with `setsid`,
/// becomes our child instead of init's, so the runner can still find it and stop it. Returns
/// false where the kernel refuses.
pub fn become_subreaper() -> bool {
    nix::sys::prctl::set_child_subreaper(true).is_ok()
}

/// Our live children, from every thread's `children` list in /proc (an orphan may be handed to
/// any thread of its reaper).
pub fn children() -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out.sort_unstable();
    out.dedup();
    out.retain(|&pid| stat(pid).is_some_and(|s| s.state != 'Z'));
    out
}

/// Whether `pid`'s environment holds every `(var, value)` of `wanted`.
pub fn env_matches(pid: u32, wanted: &[(&str, &str)]) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    wanted
        .iter()
        .all(|(var, value)| env_value(&env, var) == Some(value))
}

/// Signal a process that left its attempt's group: its whole group when it leads one (it ran
/// `setsid` or `setpgid`), else the process alone.
pub fn signal_escaped(pid: u32, sig: Signal) {
    match stat(pid) {
        Some(s) if s.pgid == pid => {
            signal_group(pid, sig);
        }
        Some(_) => {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), sig);
        }
        None => {}
    }
}

/// Whether `pid` is a live process (not a zombie).
pub fn running(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z')
}

/// Reap `pid` if it is our child and has exited; never blocks.
pub fn reap(pid: u32) {
    let _ = nix::sys::wait::waitpid(
        Pid::from_raw(pid as i32),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}

/// Reap every child that has exited. Only for when no attempt runs: it would take an attempt's
/// exit status from its own waiter.
pub fn reap_all() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// The command name of `pid` (`sleep`), for messages.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `var`'s value in an environment block as /proc shows it (`KEY=VALUE`, NUL-separated).
fn env_value<'a>(env: &'a [u8], var: &str) -> Option<&'a str> {
    env.split(|&b| b == 0)
        .find_map(|kv| std::str::from_utf8(kv).ok()?.strip_prefix(var)?.strip_prefix('='))
}

/// The tasks (`PLUMB_TASK`, with `PLUMB_ATTEMPT`) that the example pids of `groups` belong
/// to, as far as their environments say: "load (attempt 2)".
pub fn tasks_of(groups: &[(u32, u32)]) -> Vec<String> {
    let mut tasks: Vec<String> = groups
        .iter()
        .filter_map(|&(_, pid)| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let task = env_value(&env, "PLUMB_TASK")?;
            Some(match env_value(&env, "PLUMB_ATTEMPT") {
                Some(n) => format!("{task} (attempt {n})"),
                None => task.to_string(),
            })
        })
        .collect();
    tasks.sort();
    tasks.dedup();
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_ticks_around_a_spawn_are_the_childs_start_time() {
        // Whatever the machine's load, a child's start time lies between the clock read before
        // and after its spawn, and is that reading when both agree; how often they agree
        // depends on the load, so it is not asserted.
        for _ in 0..50 {
            let before = boot_ticks_now().expect("CLOCK_BOOTTIME");
            let mut child = std::process::Command::new("/bin/sleep").arg("1").spawn().unwrap();
            let after = boot_ticks_now().unwrap();
            let actual = start_ticks(child.id()).expect("a running child has a stat");
            assert!(
                before <= actual && actual <= after,
                "{before} <= {actual} <= {after}"
            );
            if before == after {
                assert_eq!(actual, before);
            }
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    #[test]
    fn own_start_time_is_readable_and_identifies_us() {
        let me = std::process::id();
        let t = start_ticks(me).expect("own /proc entry");
        assert!(same_process_alive(me, t));
        assert!(!same_process_alive(me, t + 1));
    }
}
