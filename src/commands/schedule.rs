//! `plumb schedule`: the long-running scheduler.
//!
//! Every pipeline under `pipelines/` with a `schedule` is fired at its times, in its zone. A fire
//! runs `plumb run PIPELINE --logical-time FIRE --wait` as a child process: the same code path,
//! locks, markers and alerts as a run by hand, with date params resolved against the fire time.
//!
//! Every fire time is recorded in SQLite (`fires`) before it is launched, so a restart never
//! handles a time twice; the time since which a pipeline is scheduled is recorded too
//! (`schedules`), so a restart never forgets a time that passed while it was down: those are
//! handled by the pipeline's `catchup` policy. Fires that were running when the scheduler
//! stopped are launched again on start, and resume.
//!
//! At most `max_active_runs` runs of a pipeline and one run of an instance are active at once;
//! later fires wait their turn. Pipeline files are re-read when they change. SIGTERM or SIGINT
//! stops launching, passes the signal to every running child (which stops its tasks and records
//! them as interrupted) and exits 0 once all have ended.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::clock;
use crate::error::{Error, Result};
use crate::exit;
use crate::instance::Instance;
use crate::mail::{Courier, SmtpConfig};
use crate::pipeline::{Catchup, Pipeline};
use crate::project::{Locator, Project, display_path};
use crate::state::{Runner, State, time_key};

/// A fire this close to now counts as on time; older ones were missed (the scheduler was not
/// running when they came) and go through the catch-up policy. The loop wakes at each fire
/// time, so on-time fires are milliseconds late.
const ON_TIME: chrono::Duration = chrono::Duration::seconds(10);
/// How often pipeline files are checked for changes (real time).
const RELOAD_EVERY: Duration = Duration::from_secs(1);

pub fn run(locator: &Locator) -> Result<i32> {
    let project = locator.project()?;
    let state = project.open_state()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("cannot start the runtime: {e}")))?;
    let courier = match SmtpConfig::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("plumb: warning: {e}; deadline alerts stay queued in the outbox");
            None
        }
    }
    .map(|cfg| {
        let pid = std::process::id();
        let me = Runner {
            pid,
            start: crate::process::start_ticks(pid).unwrap_or(0),
        };
        Courier::start(project.state_dir.clone(), cfg, me)
    });
    let daemon = Daemon {
        up_since: clock::now(),
        courier,
        next_deadline: None,
        project,
        state,
        entries: BTreeMap::new(),
        pending: VecDeque::new(),
        active: Vec::new(),
        last_reload: None,
    };
    rt.block_on(daemon.run())
}

struct Active {
    pipeline: String,
    fire: String,
    instance: String,
    pid: u32,
}

struct Daemon {
    /// When this scheduler started: a fire time after it came while the scheduler ran, so it is
    /// never "missed while down", however late a slow load or a stalled machine made it.
    up_since: DateTime<Utc>,
    project: Project,
    state: State,
    /// Loaded pipelines by file path; `None` for a file that failed to load (reported once per
    /// change).
    entries: BTreeMap<PathBuf, (Option<SystemTime>, Option<Pipeline>)>,
    /// Recorded fires waiting to be launched: (pipeline, fire time).
    pending: VecDeque<(String, String)>,
    active: Vec<Active>,
    last_reload: Option<Instant>,
    /// Delivers the deadline alerts the scheduler queues (`PLUMB_SMTP_URL`).
    courier: Option<Courier>,
    /// The earliest deadline of a fire still watched.
    next_deadline: Option<DateTime<Utc>>,
}

fn say(text: &str) {
    // The daemon serves pipelines of any zone: its own clock is the machine's, with the offset.
    println!("{} {text}", chrono::Local::now().format("%H:%M:%S %:z"));
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Daemon {
    async fn run(mut self) -> Result<i32> {
        let mut sigint = signal(SignalKind::interrupt()).map_err(|e| Error::Io(e.to_string()))?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(|e| Error::Io(e.to_string()))?;
        let mut children: JoinSet<(String, String, Option<i32>)> = JoinSet::new();

        self.reload();
        let scheduled: Vec<&Pipeline> = self.pipelines().filter(|p| p.schedule.is_some()).collect();
        say(&format!(
            "plumb schedule: {} scheduled pipeline{} in {}",
            scheduled.len(),
            if scheduled.len() == 1 { "" } else { "s" },
            display_path(&self.project.root).display()
        ));
        let now = clock::now();
        for p in scheduled {
            let s = p.schedule.as_ref().expect("filtered on schedule");
            let next = s.fires_after(now.with_timezone(&p.timezone)).next();
            say(&format!(
                "  {}: next fire {} ({}, {}, catchup {})",
                p.name,
                next.map_or("never".into(), |t| t.format("%Y-%m-%d %H:%M %:z").to_string()),
                s.text,
                p.timezone,
                catchup_word(p.catchup)
            ));
        }
        for (pipeline, fire) in self.state.unfinished_fires()? {
            let shown = self.shown_fire(&pipeline, &fire);
            say(&format!("resume  {pipeline} fire {shown} (it had not finished)"));
            self.pending.push_back((pipeline, fire));
        }

        let mut stopping: Option<Signal> = None;
        loop {
            if stopping.is_none() {
                self.reload();
                self.enqueue_due(clock::now())?;
                self.launch(&mut children)?;
                self.watch_deadlines(clock::now())?;
            }
            if stopping.is_some() && children.is_empty() {
                break;
            }
            let wait = self.next_wake();
            tokio::select! {
                Some(done) = children.join_next(), if !children.is_empty() => {
                    let (pipeline, fire, code) = done.map_err(|e| Error::Io(e.to_string()))?;
                    self.finished(&pipeline, &fire, code)?;
                }
                _ = tokio::time::sleep(wait) => {}
                _ = sigint.recv() => stopping = Some(self.stop(Signal::SIGINT, stopping.is_some())),
                _ = sigterm.recv() => stopping = Some(self.stop(Signal::SIGTERM, stopping.is_some())),
            }
        }
        if let Some(c) = self.courier.take()
            && c.finish(Duration::from_secs(20)).is_none()
        {
            eprintln!("plumb: warning: the mail server is slow; unsent alerts stay in the outbox");
        }
        say("plumb schedule: stopped");
        Ok(exit::SUCCESS)
    }

    fn pipelines(&self) -> impl Iterator<Item = &Pipeline> {
        self.entries.values().filter_map(|(_, p)| p.as_ref())
    }

    fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines().find(|p| p.name == name)
    }

    /// A recorded fire time (UTC, as the state keys it) as people read it: in its pipeline's
    /// zone with the offset (UTC for a pipeline no longer loaded).
    fn shown_fire(&self, name: &str, fire: &str) -> String {
        let tz = self.pipeline(name).map_or(chrono_tz::Tz::UTC, |p| p.timezone);
        parse_time(fire).map_or(fire.to_string(), |t| {
            t.with_timezone(&tz).format("%Y-%m-%d %H:%M %:z").to_string()
        })
    }

    /// Re-read pipeline files that changed, appeared or disappeared.
    fn reload(&mut self) {
        if self.last_reload.is_some_and(|t| t.elapsed() < RELOAD_EVERY) {
            return;
        }
        let first = self.last_reload.is_none();
        self.last_reload = Some(Instant::now());
        let paths = self.project.pipelines();
        let gone: Vec<PathBuf> = self
            .entries
            .keys()
            .filter(|k| !paths.contains(k))
            .cloned()
            .collect();
        for g in gone {
            say(&format!(
                "removed {}: no longer scheduled",
                display_path(&g).display()
            ));
            self.entries.remove(&g);
        }
        for path in paths {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if self.entries.get(&path).is_some_and(|(m, _)| *m == modified) {
                continue;
            }
            match Pipeline::load(&path, &display_path(&path), &self.project.config) {
                Ok(p) => {
                    for w in &p.warnings {
                        eprint!("{w}");
                    }
                    if !first {
                        say(&format!(
                            "loaded  {} ({})",
                            p.name,
                            p.schedule.as_ref().map_or("no schedule", |s| s.text.as_str())
                        ));
                    }
                    self.entries.insert(path, (modified, Some(p)));
                }
                Err(d) => {
                    eprintln!("{d}");
                    say(&format!(
                        "invalid {}: not scheduled until it is fixed",
                        display_path(&path).display()
                    ));
                    self.entries.insert(path, (modified, None));
                }
            }
        }
    }

    /// Record every fire time that has come, applying each pipeline's catch-up policy to times
    /// missed while the scheduler was down.
    fn enqueue_due(&mut self, now: DateTime<Utc>) -> Result<()> {
        let mut work = Vec::new();
        for p in self.pipelines() {
            let Some(schedule) = &p.schedule else { continue };
            work.push((
                p.name.clone(),
                schedule.clone(),
                p.timezone,
                p.catchup,
                p.catchup_window,
            ));
        }
        for (name, schedule, tz, catchup, window) in work {
            let since = self.state.schedule_since(&name, &schedule.text, &time_key(now))?;
            let last = self.state.last_fire(&name)?;
            let cursor = [Some(since), last]
                .into_iter()
                .flatten()
                .filter_map(|s| parse_time(&s))
                .max()
                .unwrap_or(now);
            let due: Vec<DateTime<Utc>> = schedule
                .fires_after(cursor.with_timezone(&tz))
                .map(|t| t.with_timezone(&Utc))
                .take_while(|t| *t <= now)
                .take(100_000)
                .collect();
            if due.is_empty() {
                continue;
            }
            let up_since = self.up_since;
            let on_time = |t: &DateTime<Utc>| *t >= up_since || now - *t <= ON_TIME;
            let latest = *due.last().expect("non-empty");
            let launch = |t: &DateTime<Utc>| match catchup {
                _ if on_time(t) => true,
                Catchup::All => {
                    now - *t <= chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX)
                }
                Catchup::Latest => *t == latest,
                Catchup::None => false,
            };
            let fires: Vec<(String, &str)> = due
                .iter()
                .map(|t| (time_key(*t), if launch(t) { "queued" } else { "skipped" }))
                .collect();
            let skipped = fires.iter().filter(|(_, s)| *s == "skipped").count();
            if skipped > 0 {
                say(&format!(
                    "skip    {name}: {skipped} fire time{} missed while down (catchup {})",
                    if skipped == 1 { "" } else { "s" },
                    catchup_word(catchup)
                ));
            }
            for fire in self.state.record_fires(&name, &fires)? {
                self.pending.push_back((name.clone(), fire));
            }
        }
        Ok(())
    }

    /// Start waiting fires that may run now.
    fn launch(&mut self, children: &mut JoinSet<(String, String, Option<i32>)>) -> Result<()> {
        let mut i = 0;
        while i < self.pending.len() {
            let (name, fire) = self.pending[i].clone();
            let Some(p) = self.pipeline(&name) else {
                i += 1;
                continue;
            };
            let Some(at) = parse_time(&fire) else {
                self.pending.remove(i);
                continue;
            };
            let key = match Instance::new(p, &[], at) {
                Ok(inst) => inst.key(),
                Err(e) => {
                    say(&format!(
                        "FAILED  {name} fire {}: {e}",
                        self.shown_fire(&name, &fire)
                    ));
                    self.state.set_fire(&name, &fire, "failed", Some(exit::USAGE))?;
                    self.pending.remove(i);
                    continue;
                }
            };
            let busy = self.active.iter().filter(|a| a.pipeline == name).count() >= p.max_active_runs
                || self
                    .active
                    .iter()
                    .any(|a| a.pipeline == name && a.instance == key);
            if busy {
                i += 1;
                continue;
            }
            let out = self
                .project
                .state_dir
                .join("logs")
                .join(&name)
                .join("schedule")
                .join(format!("{}.txt", fire.replace(':', "-")));
            let mut cmd = super::child::plumb(&self.project, &out)?;
            cmd.arg("run")
                .arg(&p.path)
                .arg("--wait")
                .arg("--logical-time")
                .arg(&fire);
            let label = if key.is_empty() {
                name.clone()
            } else {
                format!("{name} {key}")
            };
            let local = at.with_timezone(&p.timezone).format("%Y-%m-%d %H:%M %:z");
            let mut child = cmd
                .spawn()
                .map_err(|e| Error::Io(format!("cannot start plumb run: {e}")))?;
            let pid = child.id().unwrap_or(0);
            self.state.set_fire(&name, &fire, "running", None)?;
            say(&format!(
                "fire    {label} for {local} (pid {pid}, output {})",
                display_path(&out).display()
            ));
            self.active.push(Active {
                pipeline: name.clone(),
                fire: fire.clone(),
                instance: key,
                pid,
            });
            self.pending.remove(i);
            children.spawn(async move {
                let code = child.wait().await.ok().and_then(|s| s.code());
                (name, fire, code)
            });
        }
        Ok(())
    }

    fn finished(&mut self, pipeline: &str, fire: &str, code: Option<i32>) -> Result<()> {
        self.active
            .retain(|a| !(a.pipeline == pipeline && a.fire == fire));
        let status = match code {
            Some(exit::SUCCESS) => "done",
            Some(exit::MISSING_INPUT) => "missing",
            Some(exit::INTERRUPTED_INT) | Some(exit::INTERRUPTED_TERM) | None => "interrupted",
            _ => "failed",
        };
        self.state.set_fire(pipeline, fire, status, code)?;
        say(&format!(
            "{:<7} {pipeline} fire {} (exit {})",
            super::child::outcome(code).to_lowercase(),
            self.shown_fire(pipeline, fire),
            code.map_or("by signal".into(), |c| c.to_string())
        ));
        Ok(())
    }

    /// Stop launching and pass the signal on; a second signal is passed on too, which makes the
    /// runners kill their tasks at once.
    fn stop(&mut self, sig: Signal, again: bool) -> Signal {
        say(&format!(
            "{}: {} {} running fire{}",
            sig.as_str(),
            if again { "killing" } else { "stopping" },
            self.active.len(),
            if self.active.len() == 1 { "" } else { "s" }
        ));
        for a in &self.active {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(a.pid as i32), Signal::SIGTERM);
        }
        sig
    }

    /// Real time until the next thing to do: the earliest next fire, at most a second (to notice
    /// edited files), at least a few milliseconds.
    fn next_wake(&self) -> Duration {
        let now = clock::now();
        let next = self
            .pipelines()
            .filter_map(|p| {
                let s = p.schedule.as_ref()?;
                s.fires_after(now.with_timezone(&p.timezone))
                    .next()
                    .map(|t| t.with_timezone(&Utc))
            })
            .min();
        let next = next.into_iter().chain(self.next_deadline).min();
        let wait = next.map_or(RELOAD_EVERY, clock::real_until);
        wait.clamp(Duration::from_millis(5), RELOAD_EVERY)
    }
}

fn catchup_word(c: Catchup) -> &'static str {
    match c {
        Catchup::Latest => "latest",
        Catchup::All => "all",
        Catchup::None => "none",
    }
}

/// Deadlines (DESIGN 7): the scheduler watches every fire of a pipeline with a `deadline`,
/// whether its run started or not, and alerts once when the deadline comes and the instance is
/// not complete. Its own code, apart from the daemon's loop.
mod deadlines {
    use chrono::{DateTime, Utc};

    use super::{Daemon, parse_time, say};
    use crate::error::Result;
    use crate::instance::Instance;
    use crate::state::time_key;

    impl Daemon {
        /// Settle every watched fire whose deadline has come: record it met, or missed with its
        /// alert (the state refuses a second record, so a restart or the fire's own run, which
        /// watches too, never alerts again). Fires skipped because the scheduler was down and
        /// whose deadline passed while it was down are not alerted: the skip was reported.
        pub(super) fn watch_deadlines(&mut self, now: DateTime<Utc>) -> Result<()> {
            let names: Vec<String> = self
                .pipelines()
                .filter(|p| p.schedule.is_some())
                .map(|p| p.name.clone())
                .collect();
            let mut next: Option<DateTime<Utc>> = None;
            for name in names {
                let fires = self.state.unwatched_fires(&name)?;
                let Some(p) = self.pipeline(&name) else { continue };
                let Some(deadline) = p.deadline else {
                    if !fires.is_empty() {
                        self.state.fire_watched(&name, None)?;
                    }
                    continue;
                };
                let (tz, tasks) = (p.timezone, p.tasks.len());
                for (fire, status) in fires {
                    let Some(at) = parse_time(&fire) else {
                        self.state.fire_watched(&name, Some(&fire))?;
                        continue;
                    };
                    let due = deadline.at(at, tz);
                    if due > now {
                        // Later fires have later deadlines.
                        next = next.into_iter().chain([due]).min();
                        break;
                    }
                    let p = self.pipeline(&name).expect("looked up above");
                    let key = match Instance::new(p, &[], at) {
                        Ok(i) => i.key(),
                        Err(_) => {
                            self.state.fire_watched(&name, Some(&fire))?;
                            continue;
                        }
                    };
                    let markers = self.state.markers(&name, &key, tasks)?;
                    let complete = p.tasks.iter().all(|t| markers.contains_key(&t.id));
                    let down = status == "skipped" && due < self.up_since;
                    let due_key = time_key(due);
                    if complete || down {
                        self.state
                            .record_deadline(&name, &key, &due_key, None, None, !complete)?;
                    } else {
                        self.missed(&name, &key, &fire, &status, due)?;
                    }
                    self.state.fire_watched(&name, Some(&fire))?;
                }
            }
            self.next_deadline = next;
            Ok(())
        }

        /// Alert that the instance of `fire` is not complete by `due`.
        fn missed(
            &mut self,
            name: &str,
            key: &str,
            fire: &str,
            status: &str,
            due: DateTime<Utc>,
        ) -> Result<()> {
            let p = self.pipeline(name).expect("the caller found it");
            let shown = self.shown_fire(name, fire);
            let how = match status {
                "queued" => format!("Its scheduled run (fire {shown}) never started: it is still queued."),
                "skipped" => format!(
                    "Its scheduled run (fire {shown}) never started: it was skipped by the catch-up policy."
                ),
                "running" => format!("Its scheduled run (fire {shown}) is still going."),
                other => format!("Its scheduled run (fire {shown}) ended {other}, and it is not complete."),
            };
            let label = if key.is_empty() {
                name.to_string()
            } else {
                format!("{name} {key}")
            };
            let wants = !p.alerts.email.is_empty() && p.alerts.on.iter().any(|e| e == "deadline_miss");
            let alert = wants.then(|| crate::alert::deadline_miss(p, key, &label, None, due, &how));
            let tz = p.timezone;
            let new = self
                .state
                .record_deadline(name, key, &time_key(due), None, alert.as_ref(), true)?;
            if new {
                say(&format!(
                    "DEADLINE {label} not complete by {}: {how}",
                    crate::timefmt::at(due, tz)
                ));
                if alert.is_some()
                    && let Some(c) = &self.courier
                {
                    c.kick();
                }
            }
            Ok(())
        }
    }
}
