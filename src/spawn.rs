//! Starting a task's command: `posix_spawn` with an environment prepared once per run.
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

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The runner's environment as `KEY=VALUE` C strings, with each key's length, read once.
fn inherited() -> &'static [(usize, CString)] {
    static ENV: OnceLock<Vec<(usize, CString)>> = OnceLock::new();
    ENV.get_or_init(|| {
        std::env::vars_os()
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
    /// Kernels before 5.3 have no pidfd: look every 10 ms.
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

/// `posix_spawn` error numbers (and -1 with errno) as an `io::Result`.
fn check(r: libc::c_int) -> io::Result<()> {
    match r {
        0 => Ok(()),
        -1 => Err(io::Error::last_os_error()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The file actions and attributes of a spawn, destroyed on drop.
struct Actions(MaybeUninit<libc::posix_spawn_file_actions_t>);
struct Attrs(MaybeUninit<libc::posix_spawnattr_t>);

impl Drop for Actions {
    fn drop(&mut self) {
        // SAFETY: only built by `Actions::new`, which initialised it.
        unsafe { libc::posix_spawn_file_actions_destroy(self.0.as_mut_ptr()) };
    }
}

impl Drop for Attrs {
    fn drop(&mut self) {
        // SAFETY: only built by `Attrs::new`, which initialised it.
        unsafe { libc::posix_spawnattr_destroy(self.0.as_mut_ptr()) };
    }
}

impl Actions {
    fn new(output: &OwnedFd, cwd: &CStr) -> io::Result<Actions> {
        let mut a = MaybeUninit::uninit();
        // SAFETY: init on uninitialised storage is its documented use; once it succeeded the
        // value is initialised and `Actions` owns it. The strings outlive the calls (glibc
        // copies them into the actions).
        unsafe {
            check(libc::posix_spawn_file_actions_init(a.as_mut_ptr()))?;
            let mut a = Actions(a);
            let p = a.0.as_mut_ptr();
            check(libc::posix_spawn_file_actions_addopen(
                p,
                0,
                c"/dev/null".as_ptr(),
                libc::O_RDONLY,
                0,
            ))?;
            check(libc::posix_spawn_file_actions_adddup2(p, output.as_raw_fd(), 1))?;
            check(libc::posix_spawn_file_actions_adddup2(p, output.as_raw_fd(), 2))?;
            check(libc::posix_spawn_file_actions_addchdir_np(p, cwd.as_ptr()))?;
            Ok(a)
        }
    }
}

impl Attrs {
    fn new() -> io::Result<Attrs> {
        let mut a = MaybeUninit::uninit();
        // SAFETY: as for `Actions::new`; the signal sets are initialised by sigemptyset before
        // they are read.
        unsafe {
            check(libc::posix_spawnattr_init(a.as_mut_ptr()))?;
            let mut a = Attrs(a);
            let p = a.0.as_mut_ptr();
            let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(empty.as_mut_ptr());
            let mut pipe = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(pipe.as_mut_ptr());
            libc::sigaddset(pipe.as_mut_ptr(), libc::SIGPIPE);
            check(libc::posix_spawnattr_setpgroup(p, 0))?;
            check(libc::posix_spawnattr_setsigmask(p, empty.as_ptr()))?;
            check(libc::posix_spawnattr_setsigdefault(p, pipe.as_ptr()))?;
            let flags =
                libc::POSIX_SPAWN_SETPGROUP | libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
            check(libc::posix_spawnattr_setflags(p, flags as libc::c_short))?;
            Ok(a)
        }
    }
}

/// Start `spec` in a new process group. Must be called within a tokio runtime.
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
    let mut argv: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());
    let cwd = c_string(spec.cwd.as_os_str())?;
    let actions = Actions::new(spec.output, &cwd)?;
    let attrs = Attrs::new()?;
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is to a live, NUL-terminated string or a null-terminated array of
    // them, all outliving the call; glibc reports an exec failure as the return value.
    check(unsafe {
        libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            actions.0.as_ptr(),
            attrs.0.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr().cast(),
        )
    })?;
    let pid = pid as u32;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    let exit = if fd >= 0 {
        // SAFETY: a descriptor pidfd_open just returned, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        // SAFETY: the descriptor is owned by the AsyncFd and neither replaced nor closed while
        // it is registered.
        match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
            Ok(fd) => Exit::Pidfd(fd),
            Err(_) => Exit::Poll,
        }
    } else {
        Exit::Poll
    };
    Ok(Child {
        pid,
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
