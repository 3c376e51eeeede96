//! Starting a task's command: `clone` and `execve`, with an environment prepared once per run.
//!
//! `std::process::Command` rebuilds the whole environment for every spawn once a single variable
//! is added: it reads all of `environ` into a sorted map, merges the additions and allocates a
//! C string per variable. plumb adds `PLUMB_TASK` and friends to every task, so that rebuild was a
//! quarter of the runner's own CPU per task (callgrind, 1,000 tasks). Here the inherited
//! environment is turned into C strings once, and each spawn only points at them and at the
//! task's own variables.
//!
//! The child gets what `Command` would give it: its own process group (so signals reach all it
//! starts), stdin from /dev/null, stdout and stderr on the given pipe, the working directory,
//! an empty signal mask and SIGPIPE back at its default (Rust's runtime ignores SIGPIPE, and an
//! ignored signal stays ignored across exec). A program name without a slash is looked up in the
//! child's own `PATH`, as `Command` does when `PATH` is among the variables it sets. The child is
//! waited for through a pidfd, so nothing else in the process can reap it by accident.
//!
//! The process is made as glibc's `posix_spawn` makes it (`clone(CLONE_VM | CLONE_VFORK)`, a
//! child routine that resets the runner's signal handlers and sets up descriptors and directory
//! before `execve`), minus its per-spawn costs: a stack mapped and unmapped for every child,
//! /dev/null opened in every child, five `prlimit64` calls checking the file actions, and a
//! separate `pidfd_open`.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// plumb's own secrets: never passed on from the runner's environment to a task or a `check`.
/// A task that needs one sets it in its own `env`, which still applies.
pub const SECRETS: [&str; 3] = ["PLUMB_SMTP_URL", "PLUMB_SMTP_PASSWORD", "PLUMB_SERVE_TOKEN"];

/// The runner's environment as `KEY=VALUE` C strings, with each key's length, read once, without
/// plumb's [`SECRETS`].
fn inherited() -> &'static [(usize, CString)] {
    static ENV: OnceLock<Vec<(usize, CString)>> = OnceLock::new();
    ENV.get_or_init(|| {
        std::env::vars_os()
            .filter(|(k, _)| !SECRETS.iter().any(|s| k.as_bytes() == s.as_bytes()))
            .filter_map(|(k, v)| key_value(k.as_bytes(), v.as_bytes()).map(|c| (k.len(), c)))
            .collect()
    })
}

/// `KEY=VALUE` as a C string; `None` when either holds a NUL byte.
fn key_value(key: &[u8], value: &[u8]) -> Option<CString> {
    let mut kv = Vec::with_capacity(key.len() + 1 + value.len() + 1);
    kv.extend_from_slice(key);
    kv.push(b'=');
    kv.extend_from_slice(value);
    CString::new(kv).ok()
}

/// What to start.
pub struct Spec<'a> {
    /// `argv[0]` is the program: a path, or a name looked up in the child's `PATH`.
    pub argv: &'a [&'a OsStr],
    /// Variables set on top of the runner's own (a later entry wins over an earlier one).
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    /// Receives both stdout and stderr.
    pub output: &'a OwnedFd,
}

/// A started child, in its own process group whose id is its pid.
pub struct Child {
    pid: u32,
    exit: Exit,
    status: Option<ExitStatus>,
}

enum Exit {
    /// Readable once the child has exited.
    Pidfd(AsyncFd<OwnedFd>),
    /// No pollable pidfd (kernels before 5.2 ignore `CLONE_PIDFD`; on 5.2 epoll refuses the
    /// pidfd it gives): look every 10 ms.
    Poll,
}

impl Child {
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Wait for the child to exit and reap it. Cancel-safe: dropping the future before it is
    /// ready leaves the child to a later call.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        loop {
            if let Exit::Pidfd(fd) = &self.exit {
                let mut ready = fd.readable().await?;
                ready.clear_ready();
            }
            if let Some(s) = self.try_reap()? {
                self.status = Some(s);
                return Ok(s);
            }
            if let Exit::Poll = self.exit {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    fn try_reap(&self) -> io::Result<Option<ExitStatus>> {
        let mut status = 0;
        loop {
            // SAFETY: waitpid writes only to `status`.
            let r = unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, libc::WNOHANG) };
            return match r {
                0 => Ok(None),
                r if r > 0 => Ok(Some(ExitStatus::from_raw(status))),
                _ => match io::Error::last_os_error() {
                    e if e.kind() == io::ErrorKind::Interrupted => continue,
                    e => Err(e),
                },
            };
        }
    }
}

/// The environment the child gets: the runner's, minus what `env` sets, plus `env`.
fn environment(env: &[(String, String)]) -> io::Result<(Vec<CString>, Vec<*const libc::c_char>)> {
    let mut own: Vec<CString> = Vec::with_capacity(env.len());
    for (i, (k, v)) in env.iter().enumerate() {
        if env[i + 1..].iter().any(|(later, _)| later == k) {
            continue;
        }
        own.push(key_value(k.as_bytes(), v.as_bytes()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("environment variable {k} contains a NUL byte"),
            )
        })?);
    }
    let set = |key: &[u8]| env.iter().any(|(k, _)| k.as_bytes() == key);
    let mut ptrs: Vec<*const libc::c_char> = Vec::with_capacity(inherited().len() + own.len() + 1);
    ptrs.extend(
        inherited()
            .iter()
            .filter(|(key_len, kv)| !set(&kv.as_bytes()[..*key_len]))
            .map(|(_, kv)| kv.as_ptr()),
    );
    ptrs.extend(own.iter().map(|kv| kv.as_ptr()));
    ptrs.push(std::ptr::null());
    Ok((own, ptrs))
}

/// The file to execute for `program`: itself when it has a slash, else the first executable
/// file of that name in `path` (the child's `PATH`, or the usual default without one).
fn resolve(program: &OsStr, path: Option<&OsStr>, cwd: &Path) -> io::Result<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = path.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        // A relative PATH entry is relative to the directory the child runs in.
        let on_disk = if candidate.is_relative() {
            cwd.join(&candidate)
        } else {
            candidate.clone()
        };
        if on_disk.is_file() && nix::unistd::access(&on_disk, nix::unistd::AccessFlags::X_OK).is_ok() {
            return Ok(on_disk);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("not found in PATH ({})", path.to_string_lossy()),
    ))
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte"))
}

/// Everything the child needs, prepared by the parent as raw pointers and descriptors: the child
/// runs in the parent's memory on a borrowed stack, so it may neither allocate nor panic.
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdin: libc::c_int,
    output: libc::c_int,
    /// The errno of the step that failed; 0 while none has. The parent reads it once the child
    /// has exec'd or exited, which `CLONE_VFORK` waits for.
    error: AtomicI32,
}

/// The kernel's signal set: 64 signals on every Linux architecture Rust targets.
type KernelSigset = u64;

/// `rt_sigprocmask` itself, not glibc's wrapper, which leaves glibc's internal signals out.
unsafe fn set_mask(set: &KernelSigset, old: *mut KernelSigset) {
    // SAFETY (caller): `old` is null or writable.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            set as *const KernelSigset,
            old,
            std::mem::size_of::<KernelSigset>(),
        );
    }
}

/// The child, between `clone` and `execve`. Only async-signal-safe calls: the parent is
/// suspended in `clone` until this execs or exits, and they share memory until then.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` the parent keeps alive across `clone`; every pointer in
    // it is to a live NUL-terminated string or null-terminated array; the calls are plain system
    // call wrappers.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        let fail = |a: &ChildArgs| -> libc::c_int {
            a.error.store(*libc::__errno_location(), Ordering::Relaxed);
            libc::_exit(127)
        };
        // Every signal is blocked (the parent blocked them before `clone`). A handler of the
        // runner's must not run here, in its memory, when they are unblocked below: those go
        // back to the default, as exec would do anyway; ignored ones stay ignored (as `nohup`
        // expects) except SIGPIPE, which Rust's runtime ignores. glibc's own two signals,
        // which its `sigaction` refuses, plumb never sends.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        let mut old: libc::sigaction = std::mem::zeroed();
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            if sig == libc::SIGPIPE
                || (libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                    && old.sa_sigaction != libc::SIG_DFL
                    && old.sa_sigaction != libc::SIG_IGN)
            {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0
            || libc::dup2(a.stdin, 0) < 0
            || libc::dup2(a.output, 1) < 0
            || libc::dup2(a.output, 2) < 0
            || libc::chdir(a.cwd) != 0
        {
            return fail(a);
        }
        set_mask(&0, std::ptr::null_mut());
        libc::execve(a.program, a.argv, a.envp);
        fail(a)
    }
}

/// The stack the child runs on until it execs: mapped once per thread and used again by every
/// spawn from it (a thread is suspended while its child uses it), with a guard page below.
/// glibc's `posix_spawn` maps and unmaps a fresh one each time, and the unmapping made the
/// kernel flush the other CPU's TLB, where the child had run.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

const GUARD: usize = 4096;
const STACK: usize = 64 * 1024;

impl Stack {
    fn map() -> io::Result<Stack> {
        let len = GUARD + STACK;
        // SAFETY: a fresh anonymous mapping, owned by the returned Stack; the lowest page is
        // made inaccessible, the rest written once so the child never faults on it.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let stack = Stack { base, len };
            if libc::mprotect(base, GUARD, libc::PROT_NONE) != 0 {
                return Err(io::Error::last_os_error());
            }
            std::ptr::write_bytes(base.cast::<u8>().add(GUARD), 0, STACK);
            Ok(stack)
        }
    }

    /// The highest address, where a downward-growing stack starts (16-byte aligned).
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, which is page-aligned.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping `map` made, no longer used by any child once its spawn returned.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

thread_local! {
    static CHILD_STACK: std::cell::RefCell<Option<Stack>> = const { std::cell::RefCell::new(None) };
}

/// /dev/null for the children's stdin, opened once.
fn dev_null() -> io::Result<libc::c_int> {
    static NULL: OnceLock<io::Result<OwnedFd>> = OnceLock::new();
    match NULL.get_or_init(|| Ok(std::fs::File::open("/dev/null")?.into())) {
        Ok(fd) => Ok(fd.as_raw_fd()),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot open /dev/null: {e}"))),
    }
}

/// Start `spec` in a new process group. Must be called within a tokio runtime.
///
/// `clone(CLONE_VM | CLONE_VFORK)` with a child routine of our own, as glibc's `posix_spawn`
/// does, but on a stack kept from one spawn to the next, with /dev/null opened once, and with
/// the pidfd handed back by the same call (`CLONE_PIDFD`): a spawn returned 23 us sooner than
/// `posix_spawn` with the same file actions and attributes (docs/proof.md).
pub fn spawn(spec: &Spec<'_>) -> io::Result<Child> {
    let (_own, envp) = environment(spec.env)?;
    let child_path = spec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsStr::new(v.as_str()))
        .or_else(|| {
            inherited()
                .iter()
                .find(|(n, kv)| &kv.as_bytes()[..*n] == b"PATH")
                .map(|(n, kv)| OsStr::from_bytes(&kv.as_bytes()[n + 1..]))
        });
    let program = resolve(spec.argv[0], child_path, spec.cwd)?;
    let program = c_string(program.as_os_str())?;
    let args = spec
        .argv
        .iter()
        .map(|a| c_string(a))
        .collect::<io::Result<Vec<_>>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let cwd = c_string(spec.cwd.as_os_str())?;
    let (stdin, output) = (dev_null()?, spec.output.as_raw_fd());
    // The child's dup2s onto 0, 1 and 2 would overwrite a source among them. Rust's runtime
    // opens /dev/null on any of 0-2 that plumb was started without, so neither ever is.
    if stdin <= 2 || output <= 2 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "standard descriptors closed under the runner",
        ));
    }
    let args = ChildArgs {
        program: program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd.as_ptr(),
        stdin,
        output,
        error: AtomicI32::new(0),
    };
    let mut pidfd: libc::c_int = -1;
    let pid = CHILD_STACK.with(|slot| -> io::Result<libc::pid_t> {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(Stack::map()?);
        }
        let stack = slot.as_ref().expect("mapped above");
        let mut old: KernelSigset = 0;
        // SAFETY: the child only runs `child_main` on `stack`, which nothing else uses while this
        // thread is suspended in `clone`; `args` and everything it points to outlive the call
        // (CLONE_VFORK returns only once the child has exec'd or exited). Signals are blocked
        // around it so that none is handled in the child before it resets the handlers.
        unsafe {
            set_mask(&!0, &mut old);
            let pid = libc::clone(
                child_main,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
                (&args as *const ChildArgs).cast_mut().cast(),
                &mut pidfd as *mut libc::c_int,
            );
            let clone_error = io::Error::last_os_error();
            set_mask(&old, std::ptr::null_mut());
            if pid < 0 { Err(clone_error) } else { Ok(pid) }
        }
    })?;
    // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor there, or left -1 (kernels
    // before 5.2 ignore the flag).
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    let error = args.error.load(Ordering::Relaxed);
    if error != 0 {
        // It has exited already: reap it.
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`.
        while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
            && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
        {}
        return Err(io::Error::from_raw_os_error(error));
    }
    let exit = match pidfd {
        // SAFETY: the descriptor is owned by the AsyncFd and neither replaced nor closed while
        // it is registered.
        Some(fd) => match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
            Ok(fd) => Exit::Pidfd(fd),
            Err(_) => Exit::Poll,
        },
        None => Exit::Poll,
    };
    Ok(Child {
        pid: pid as u32,
        exit,
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str], env: &[(&str, &str)], cwd: &Path) -> io::Result<(ExitStatus, String)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (rx, tx) = std::io::pipe().unwrap();
            let tx = OwnedFd::from(tx);
            let argv: Vec<&OsStr> = argv.iter().map(OsStr::new).collect();
            let env: Vec<(String, String)> =
                env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let mut child = spawn(&Spec {
                argv: &argv,
                env: &env,
                cwd,
                output: &tx,
            })?;
            drop(tx);
            let status = child.wait().await?;
            let mut out = String::new();
            std::io::Read::read_to_string(&mut std::io::BufReader::new(rx), &mut out).unwrap();
            Ok((status, out))
        })
    }

    #[test]
    fn child_sees_its_variables_group_directory_and_default_sigpipe() {
        let dir = std::env::temp_dir();
        let script = "echo \"$PLUMB_X|$HOME|$(pwd -P)\"; \
                      read -r _ _ _ _ pgid _ < /proc/$$/stat; echo $pgid; echo $$; \
                      grep -E '^(SigBlk|SigIgn)' /proc/self/status; \
                      read line && echo read || echo eof; echo err >&2";
        let (status, out) = run(
            &["sh", "-c", script],
            &[("PLUMB_X", "a b"), ("HOME", "/nowhere"), ("PLUMB_X", "c")],
            &dir,
        )
        .unwrap();
        assert!(status.success(), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        let real = dir.canonicalize().unwrap();
        assert_eq!(
            lines[0],
            format!("c|/nowhere|{}", real.display()),
            "later value wins, HOME replaced, cwd set"
        );
        assert_eq!(lines[1], lines[2], "the child leads its own process group");
        // grep runs in the child's group with the child's mask and dispositions.
        assert_eq!(lines[3], "SigBlk:\t0000000000000000");
        let ign = u64::from_str_radix(lines[4].trim_start_matches("SigIgn:\t"), 16).unwrap();
        assert_eq!(
            ign & (1 << (libc::SIGPIPE - 1)),
            0,
            "SIGPIPE is not ignored: {}",
            lines[4]
        );
        assert_eq!(
            &lines[5..],
            ["eof", "err"],
            "stdin is /dev/null, stderr goes to the pipe"
        );
    }

    #[test]
    fn a_signal_the_runner_ignores_stays_ignored_one_it_handles_does_not() {
        // SIGUSR2 and SIGWINCH are used by no other test in this process.
        // SAFETY: setting dispositions of signals nothing else in the test process uses.
        unsafe {
            libc::signal(libc::SIGUSR2, libc::SIG_IGN);
            extern "C" fn handler(_: libc::c_int) {}
            libc::signal(libc::SIGWINCH, handler as *const () as libc::sighandler_t);
        }
        let (status, out) = run(
            &["grep", "-E", "^Sig(Ign|Cgt)", "/proc/self/status"],
            &[],
            Path::new("/"),
        )
        .unwrap();
        assert!(status.success(), "{out}");
        let mask = |name: &str| {
            let line = out.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        let bit = |sig: libc::c_int| 1u64 << (sig - 1);
        assert_ne!(mask("SigIgn:") & bit(libc::SIGUSR2), 0, "{out}");
        assert_eq!(mask("SigIgn:") & bit(libc::SIGWINCH), 0, "{out}");
    }

    /// Kernels before 5.3 give no pidfd, and the child is then polled with `waitpid` every
    /// 10 ms. No kernel here lacks one, so the test takes the pidfd away after the spawn.
    #[test]
    fn without_a_pidfd_the_exit_is_found_by_polling_and_a_cancelled_wait_loses_nothing() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let devnull = OwnedFd::from(std::fs::File::create("/dev/null").unwrap());
            let start = |script: &str| {
                let argv = [OsStr::new("/bin/sh"), OsStr::new("-c"), OsStr::new(script)];
                let mut child = spawn(&Spec {
                    argv: &argv,
                    env: &[],
                    cwd: Path::new("/"),
                    output: &devnull,
                })
                .unwrap();
                assert!(matches!(child.exit, Exit::Pidfd(_)), "this kernel gave no pidfd");
                child.exit = Exit::Poll;
                child
            };
            let mut child = start("sleep 0.3; exit 7");
            // A wait given up before the exit leaves the child to the next one.
            let early = tokio::time::timeout(Duration::from_millis(50), child.wait()).await;
            assert!(early.is_err(), "the child cannot have exited yet");
            assert_eq!(child.wait().await.unwrap().code(), Some(7));
            // Asked again, the status is remembered, not reaped twice.
            assert_eq!(child.wait().await.unwrap().code(), Some(7));
            let mut child = start("kill -KILL $$");
            assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGKILL));
        });
    }

    #[test]
    fn the_inherited_environment_passes_through() {
        let path = std::env::var("PATH").unwrap();
        let (_, out) = run(&["sh", "-c", "echo $PATH"], &[], Path::new("/")).unwrap();
        assert_eq!(out.trim_end(), path);
    }

    #[test]
    fn exit_codes_and_signals_come_back() {
        let (s, _) = run(&["/bin/sh", "-c", "exit 3"], &[], Path::new("/")).unwrap();
        assert_eq!(s.code(), Some(3));
        let (s, _) = run(&["/bin/sh", "-c", "kill -TERM $$"], &[], Path::new("/")).unwrap();
        assert_eq!(s.signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn names_are_looked_up_in_the_childs_path() {
        let dir = tempdir();
        let bin = dir.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("only-here");
        std::fs::write(&tool, "#!/bin/sh\necho found\n").unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let (s, out) = run(&["only-here"], &[("PATH", &path)], Path::new("/")).unwrap();
        assert!(s.success());
        assert_eq!(out, "found\n");
        // Not on the runner's PATH, so without the task's PATH it is not found.
        let e = run(&["only-here"], &[], Path::new("/")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("not found in PATH ("), "{e}");
        // A file that is there but cannot be executed is an error from exec itself.
        std::fs::write(dir.join("plain"), "x").unwrap();
        let e = run(&["./plain"], &[], &dir).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
        let e = run(&["/bin/sh"], &[], &dir.join("missing")).unwrap_err();
        assert_eq!(
            e.raw_os_error(),
            Some(libc::ENOENT),
            "a missing directory fails the spawn"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_nul_byte_is_an_error_not_a_truncation() {
        let e = run(&["/bin/true"], &[("X", "a\0b")], Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("X contains a NUL byte"), "{e}");
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "plumb-spawn-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
