//! Helpers shared by the integration tests in `tests/tests/`: where the built artifacts are,
//! running child processes with a time limit, WAV and MIDI files, test signals, and a small
//! pitch estimator for judging what the piano played.
//!
//! Nothing here fakes the product: the tests run the real bundles, binaries and hosts; these are
//! only the measuring instruments.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub mod inproc;
pub mod pitch;

/// The workspace root (the folder with the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Cargo's target folder: `CARGO_TARGET_DIR` when set, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let p = PathBuf::from(dir);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        None => workspace_root().join("target"),
    }
}

const BUNDLE_HINT: &str = "build them with `cargo xtask bundle hummingface --release` \
     (and `cargo build --workspace --release` for the binaries)";

/// The plugin bundles and binaries under test.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// `target/bundled/HummingFace.vst3` (a folder).
    pub vst3: PathBuf,
    /// `target/bundled/HummingFace.clap` (on Linux the shared library itself).
    pub clap: PathBuf,
    /// `target/release/hummingface`, the command-line renderer.
    pub cli: PathBuf,
    /// `target/release/hummingface-standalone`.
    pub standalone: PathBuf,
    /// Empty, or a warning that the bundles are older than the plugin library last built (so a
    /// bundle-vs-CLI mismatch may only mean a stale bundle); tests append it to their failures.
    pub stale_note: String,
}

impl Artifacts {
    /// Finds every artifact or fails with a message saying how to build the missing ones.
    /// `HUMMINGFACE_BUNDLE_DIR` overrides where the bundles are looked for (default
    /// `target/bundled`).
    pub fn locate() -> Result<Artifacts> {
        let t = target_dir();
        let bundled = std::env::var_os("HUMMINGFACE_BUNDLE_DIR")
            .map_or_else(|| t.join("bundled"), PathBuf::from);
        let mut a = Artifacts {
            vst3: bundled.join("HummingFace.vst3"),
            clap: bundled.join("HummingFace.clap"),
            cli: t.join("release").join("hummingface"),
            standalone: t.join("release").join("hummingface-standalone"),
            stale_note: String::new(),
        };
        let missing: Vec<String> = [&a.vst3, &a.clap, &a.cli, &a.standalone]
            .iter()
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            bail!(
                "missing build artifacts: {}; {BUNDLE_HINT}",
                missing.join(", ")
            );
        }
        // A bundle older than the plugin library it was made from tests stale code, and then
        // differs from the CLI built with that library.
        let lib = t.join("release").join("libhummingface.so");
        let vst3_lib = a
            .vst3
            .join("Contents")
            .join("x86_64-linux")
            .join("HummingFace.so");
        let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
        if let Some(lib_t) = mtime(&lib) {
            for bundle in [&a.clap, &vst3_lib] {
                if mtime(bundle).is_some_and(|b| b + Duration::from_secs(2) < lib_t) {
                    a.stale_note = format!(
                        "\nNOTE: {} is older than {}: the bundle may be stale; {BUNDLE_HINT}",
                        bundle.display(),
                        lib.display()
                    );
                    eprintln!("warning: {}", a.stale_note.trim());
                }
            }
        }
        Ok(a)
    }
}

/// Path of the `hf-clap-host` binary built with this test crate.
pub fn clap_host_bin() -> PathBuf {
    // Set by cargo for integration tests of the package that owns the binary.
    match option_env!("CARGO_BIN_EXE_hf-clap-host") {
        Some(p) => PathBuf::from(p),
        None => target_dir().join("release").join("hf-clap-host"),
    }
}

/// A fresh scratch folder for one test: `target/hf-tests/<name>-<pid>`; left in place afterwards
/// so a failure can be inspected.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = target_dir()
        .join("hf-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("cannot create scratch folder");
    dir
}

/// What a finished child process left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    /// Fails with the command's output unless it exited with status 0.
    pub fn check(self, what: &str) -> Result<Finished> {
        if !self.status.success() {
            bail!(
                "{what} failed ({}) after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
                describe_status(&self.status),
                self.elapsed.as_secs_f64(),
                tail(&self.stdout, 6000),
                tail(&self.stderr, 6000)
            );
        }
        Ok(self)
    }

    /// Panics unless this was a clean failure on bad input that should have written `out`:
    /// a non-zero exit, a short message on stderr (1–3 lines, one starting with "error"), no
    /// panic, and no `out` left behind. `what` names the case in the panic message.
    pub fn assert_failed_cleanly(&self, what: &str, out: &Path) {
        assert!(!self.status.success(), "{what}: exited 0");
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty() && lines.len() <= 3, "{what}: stderr should be a short message:\n{}", self.stderr);
        assert!(lines.iter().any(|l| l.starts_with("error")), "{what}: no 'error' line:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{what}: panic:\n{}", self.stderr);
        assert!(!out.exists(), "{what}: left {} behind", out.display());
    }
}

/// Panics if `dir` holds a hidden or `tmp` file (what an atomic write leaves when it fails
/// half-way). `what` names the case in the panic message.
pub fn assert_no_temporary_files(dir: &Path, what: &str) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.') || n.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "{what}: temporary files left: {left:?}");
}

/// "exit status 3" / "killed by signal 15 (SIGTERM)".
pub fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s} ({})", signal_name(s)),
        _ => format!("{status}"),
    }
}

fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        _ => "other",
    }
}

/// The last `n` bytes of `s` (on a char boundary).
pub fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// A running child whose stdout/stderr are drained by threads (so it never blocks on a full
/// pipe) and which is killed if dropped while still running.
pub struct Running {
    pub child: Child,
    out: Option<std::thread::JoinHandle<String>>,
    err: Option<std::thread::JoinHandle<String>>,
    started: Instant,
    what: String,
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> Option<std::thread::JoinHandle<String>> {
    r.map(|mut r| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    })
}

impl Running {
    /// Spawns `cmd` with piped stdout/stderr and no stdin.
    pub fn spawn(cmd: &mut Command, what: &str) -> Result<Running> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {what}: {cmd:?}"))?;
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        Ok(Running {
            child,
            out,
            err,
            started: Instant::now(),
            what: what.to_string(),
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to this child (only to it, by its pid).
    pub fn signal(&self, sig: i32) -> Result<()> {
        // SAFETY: kill(2) with the pid of a child we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        if rc != 0 {
            bail!(
                "kill({}, {sig}) failed: {}",
                self.pid(),
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout`; on timeout kills it (SIGKILL) and fails with what it printed.
    pub fn wait(mut self, timeout: Duration) -> Result<Finished> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                // Where it hangs, for the failure message: every thread's stack, when gdb is
                // installed (optional; the project does not install it).
                let stacks = thread_stacks(self.pid());
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stdout = self
                    .out
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                let stderr = self
                    .err
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                bail!(
                    "{} did not finish within {:.0} s and was killed\n--- stdout ---\n{}\n--- stderr ---\n{}{}",
                    self.what,
                    timeout.as_secs_f64(),
                    tail(&stdout, 4000),
                    tail(&stderr, 4000),
                    stacks.map(|s| format!("\n--- its threads when it was killed (gdb) ---\n{}", tail(&s, 12000))).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self
            .out
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let stderr = self
            .err
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Ok(Finished {
            status,
            stdout,
            stderr,
            elapsed: self.started.elapsed(),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion with a time limit (killed after `timeout`).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration, what: &str) -> Result<Finished> {
    Running::spawn(cmd, what)?.wait(timeout)
}

/// Default limit for one child process in these tests.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// A private X server (Xvfb) for GUI processes, stopped when dropped. Gives windowed programs
/// (the standalone with its editor) a display on a headless machine.
pub struct Xvfb {
    /// `:N`, for `DISPLAY`.
    pub display: String,
    proc: Option<Running>,
}

impl Xvfb {
    /// Starts `Xvfb :N` on a free display number; `None` when Xvfb is not installed.
    pub fn start() -> Result<Option<Xvfb>> {
        let bin = Path::new("/usr/bin/Xvfb");
        if !bin.exists() {
            return Ok(None);
        }
        // One start at a time in a process (`cargo test` runs a file's tests as threads): two
        // at once could both find display N free, and the second, seeing the first's socket
        // before its own Xvfb gave up on the lock, would take the first's display.
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let base = 100 + (std::process::id() % 800);
        for n in base..base + 50 {
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            let lock = PathBuf::from(format!("/tmp/.X{n}-lock"));
            if socket.exists() || lock.exists() {
                continue;
            }
            let mut cmd = Command::new(bin);
            cmd.args([
                format!(":{n}").as_str(),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ]);
            let mut proc = Running::spawn(&mut cmd, "Xvfb")?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && proc.alive() && !socket.exists() {
                std::thread::sleep(Duration::from_millis(50));
            }
            if socket.exists() && proc.alive() {
                return Ok(Some(Xvfb {
                    display: format!(":{n}"),
                    proc: Some(proc),
                }));
            }
            let _ = proc.signal(libc::SIGTERM);
            let _ = proc.wait(Duration::from_secs(5));
        }
        bail!("could not start Xvfb on any display from :{base}")
    }

    /// Asks every top-level window titled `title` to close, as a window manager's close button
    /// does (a `WM_DELETE_WINDOW` client message: Xvfb runs no window manager). Returns how many
    /// windows were asked.
    pub fn close_windows_titled(&self, title: &str) -> Result<usize> {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{AtomEnum, ClientMessageEvent, ConnectionExt as _, EventMask};
        let (conn, screen) = x11rb::connect(Some(&self.display))
            .with_context(|| format!("cannot connect to X display {}", self.display))?;
        let root = conn.setup().roots[screen].root;
        let protocols = conn.intern_atom(false, b"WM_PROTOCOLS")?.reply()?.atom;
        let delete = conn.intern_atom(false, b"WM_DELETE_WINDOW")?.reply()?.atom;
        let mut asked = 0;
        for window in conn.query_tree(root)?.reply()?.children {
            // A window may go between the listing and this request (BadWindow): it is not one
            // to close (seen once in a fresh clone's `.ci/run` on a loaded machine).
            let Ok(reply) = conn.get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 256)?.reply() else {
                continue;
            };
            if reply.value != title.as_bytes() {
                continue;
            }
            let event = ClientMessageEvent::new(32, window, protocols, [delete, x11rb::CURRENT_TIME, 0, 0, 0]);
            conn.send_event(false, window, EventMask::NO_EVENT, event)?;
            asked += 1;
        }
        conn.flush()?;
        Ok(asked)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        if let Some(p) = self.proc.take() {
            let _ = p.signal(libc::SIGTERM);
            let _ = p.wait(Duration::from_secs(10));
        }
    }
}

// ----------------------------------------------------------------------------------------------
// JACK
// ----------------------------------------------------------------------------------------------

/// A private JACK server (dummy driver) for one test, stopped when dropped.
pub struct JackServer {
    /// Server name (`jackd -n`).
    pub name: String,
    proc: Option<Running>,
}

impl JackServer {
    /// Starts `jackd -d dummy` at 48 kHz, 512-sample periods, and waits until it answers.
    pub fn start() -> JackServer {
        assert!(
            Path::new("/usr/bin/jackd").exists(),
            "jackd2 is not installed (/usr/bin/jackd)"
        );
        match jack_registry::reclaim_dead_servers() {
            Ok(0) => {}
            Ok(n) => eprintln!("freed {n} JACK server slot(s) left by dead servers"),
            // Not fatal: the server may still find a free slot, and if not its log says so.
            Err(e) => eprintln!("could not check the JACK server registry: {e:#}"),
        }
        // `hf-test-<pid>-<n>`: one name per server, so that tests sharing a process (`cargo
        // test` runs a file's tests as threads of one) never ask for the same server name.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{}{}-{n}", jack_registry::TEST_SERVER_PREFIX, std::process::id());
        let mut cmd = Command::new("/usr/bin/jackd");
        cmd.args([
            "--no-realtime",
            // Client timeout 20 s (default 500 ms): on a loaded CI machine a slow answer to a
            // server notification (each `jack_lsp` below registers a client) would otherwise get
            // the standalone's client removed, and its audio thread would never be called again.
            "-t",
            "20000",
            "-n",
            &name,
            "-d",
            "dummy",
            "-r",
            "48000",
            "-p",
            "512",
        ])
        .env("JACK_NO_START_SERVER", "1");
        let proc = Running::spawn(&mut cmd, "jackd").unwrap();
        let server = JackServer {
            name,
            proc: Some(proc),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ok = Command::new("jack_wait")
                .args(["-s", &server.name, "-c"])
                .env("JACK_NO_START_SERVER", "1")
                .output()
                // It prints "running" or "not running".
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .any(|l| l.trim() == "running")
                })
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "jackd -n {} did not come up within 15 s",
                server.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    /// The server's process id (None once it was killed).
    pub fn pid(&self) -> Option<i32> {
        self.proc.as_ref().map(|p| p.pid())
    }

    /// Kills the server outright (SIGKILL) and reaps it, as a crash or a time limit would: it
    /// gets no chance to free its slot in jackd's server table.
    pub fn kill(&mut self) -> Result<()> {
        let Some(p) = self.proc.take() else {
            bail!("jackd -n {} is not running", self.name)
        };
        p.signal(libc::SIGKILL)?;
        p.wait(Duration::from_secs(10))?;
        Ok(())
    }

    /// Environment that points a JACK client at this server.
    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("JACK_DEFAULT_SERVER", self.name.as_str()),
            ("JACK_NO_START_SERVER", "1"),
        ]
    }

    /// Sends `sig` to the server process (SIGSTOP/SIGCONT freeze and thaw it).
    pub fn signal(&self, sig: i32) -> Result<()> {
        match &self.proc {
            Some(p) => p.signal(sig),
            None => bail!("jackd -n {} is not running", self.name),
        }
    }

    /// `jack_lsp -c`: the ports and their connections.
    pub fn ports(&self) -> String {
        let out = Command::new("jack_lsp")
            .args(["-s", &self.name, "-c"])
            .env("JACK_NO_START_SERVER", "1")
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for JackServer {
    fn drop(&mut self) {
        if let Some(p) = self.proc.take() {
            let _ = p.signal(libc::SIGTERM);
            // A frozen server (SIGSTOP) must run to act on it.
            let _ = p.signal(libc::SIGCONT);
            // A server thawed with a dead client still in its graph (the frozen-server test)
            // sometimes never stops: jackd 1.9.21 catches the SIGTERM and hangs (in 1 of 3 runs
            // of that test, still running 25 s later). Killed, it keeps its slot in the server
            // table, which the next `start` frees.
            let done = p.wait(Duration::from_secs(10));
            // When the test failed, the server's own log says whether it dropped our client; a
            // server that had to be killed or did not exit cleanly may not have freed its slot in
            // the server table (the next `start` frees it): worth its log whatever the test did.
            let clean = matches!(&done, Ok(f) if f.status.success());
            if std::thread::panicking() || !clean {
                match done {
                    Ok(f) => eprintln!(
                        "jackd -n {} ({}) log:\n{}\n{}",
                        self.name,
                        describe_status(&f.status),
                        tail(&f.stdout, 3000),
                        tail(&f.stderr, 3000)
                    ),
                    Err(e) => eprintln!("jackd -n {}: {e:#}", self.name),
                }
            }
        }
    }
}

/// jackd's table of running servers, and freeing the slots that dead test servers hold.
///
/// jackd (jack2) registers every server in one table of 8 slots in the shared-memory segment
/// `/dev/shm/jack-shm-registry`, machine-wide and kept across processes, and frees its slot when
/// it exits cleanly. A server that dies otherwise (SIGKILL, a test process killed at its time
/// limit, a container stopped mid-run) keeps its slot, and jackd reclaims a dead server's slot
/// only for a new server of the *same name*. The tests name their servers per process, so after 8
/// such deaths on one machine every jackd refuses to start ("too many servers already active")
/// until the segment is removed. Before each start, the slots of dead servers are freed, under
/// jackd's own registry lock, as jackd frees a slot.
pub mod jack_registry {
    use std::fs::OpenOptions;
    use std::os::unix::fs::FileExt;

    use anyhow::{bail, Context, Result};

    /// Our servers' names start with this (`jackd -n hf-test-<pid>-<n>`, the test process's
    /// pid and a count of the servers it started).
    pub const TEST_SERVER_PREFIX: &str = "hf-test-";

    /// For what follows [`TEST_SERVER_PREFIX`] in a name (`<pid>` or `<pid>-<n>`, then
    /// anything): the test process's pid and the length of the server-specific part.
    fn test_server_part(rest: &str) -> Option<(i32, usize)> {
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let pid_len = digits(rest);
        let pid = rest[..pid_len].parse().ok()?;
        let len = match rest[pid_len..].strip_prefix('-') {
            Some(n) if digits(n) > 0 => pid_len + 1 + digits(n),
            _ => pid_len,
        };
        Some((pid, len))
    }
    const REGISTRY: &str = "/dev/shm/jack-shm-registry";
    /// The System V semaphore jack2 guards the registry with (`JACK_SEMAPHORE_KEY`).
    const SEMAPHORE_KEY: libc::key_t = 0x282929;
    /// `JACK_SHM_MAGIC`, "JACK" as a little-endian u32.
    const MAGIC: u32 = 0x4a41_434b;
    const MAX_SERVERS: usize = 8;
    /// The header before the server table: magic, protocol (+2 padding), type, size, hdr_len,
    /// entry_len.
    const HEADER: usize = 24;
    /// One slot: the pid (i32) and a 257-byte name, padded to 4 bytes.
    const SLOT: usize = 264;

    /// jackd's registry lock, held while this lives (SEM_UNDO: released if we die holding it).
    struct Lock(i32);

    impl Lock {
        fn take() -> Result<Lock> {
            // SAFETY: plain System V semaphore calls on jack2's well-known key, as jack2 makes
            // them (create it with one token if it does not exist yet).
            unsafe {
                let mut id = libc::semget(SEMAPHORE_KEY, 0, 0);
                if id == -1 {
                    id = libc::semget(SEMAPHORE_KEY, 1, libc::IPC_CREAT | libc::IPC_EXCL | 0o666);
                    if id != -1 {
                        let mut up = libc::sembuf { sem_num: 0, sem_op: 1, sem_flg: 0 };
                        if libc::semop(id, &mut up, 1) == -1 {
                            bail!("semop(+1) on JACK's new registry semaphore: {}", std::io::Error::last_os_error());
                        }
                    } else {
                        id = libc::semget(SEMAPHORE_KEY, 0, 0);
                    }
                }
                if id == -1 {
                    bail!("semget(0x282929) (JACK's registry lock): {}", std::io::Error::last_os_error());
                }
                let mut down = libc::sembuf { sem_num: 0, sem_op: -1, sem_flg: libc::SEM_UNDO as i16 };
                if libc::semop(id, &mut down, 1) == -1 {
                    bail!("semop(-1) on JACK's registry lock: {}", std::io::Error::last_os_error());
                }
                Ok(Lock(id))
            }
        }
    }

    impl Drop for Lock {
        fn drop(&mut self) {
            let mut up = libc::sembuf { sem_num: 0, sem_op: 1, sem_flg: libc::SEM_UNDO as i16 };
            // SAFETY: gives back the token `take` took.
            unsafe { libc::semop(self.0, &mut up, 1) };
        }
    }

    /// One slot of the table: who holds it (0: free) and the name it holds it for
    /// (`jack-<uid>:<server name>:`).
    #[derive(Debug, Clone, PartialEq)]
    pub struct Slot {
        pub pid: i32,
        pub name: String,
    }

    /// The server table, or None when no JACK server ever ran here (no registry).
    pub fn slots() -> Result<Option<Vec<Slot>>> {
        let file = match OpenOptions::new().read(true).open(REGISTRY) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot open {REGISTRY}")),
        };
        Ok(Some(read_slots(&file)?))
    }

    fn read_slots(file: &std::fs::File) -> Result<Vec<Slot>> {
        let mut head = [0u8; HEADER + MAX_SERVERS * SLOT];
        file.read_exact_at(&mut head, 0)
            .with_context(|| format!("cannot read {REGISTRY}"))?;
        let word = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().unwrap());
        if word(0) != MAGIC || word(16) as usize != HEADER + MAX_SERVERS * SLOT {
            bail!(
                "{REGISTRY} has a layout this helper does not know (magic {:#x}, header {} bytes); \
                 with no jackd running, removing it is safe",
                word(0),
                word(16)
            );
        }
        Ok((0..MAX_SERVERS)
            .map(|i| {
                let at = HEADER + i * SLOT;
                let name = &head[at + 4..at + SLOT];
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                Slot {
                    pid: i32::from_le_bytes(head[at..at + 4].try_into().unwrap()),
                    name: String::from_utf8_lossy(&name[..end]).into_owned(),
                }
            })
            .collect())
    }

    /// The name and parent of the process `pid`, if it runs (not gone, not a zombie).
    fn process(pid: i32) -> Option<(String, i32)> {
        // "<pid> (<comm>) <state> <ppid> ...".
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (a, b) = (stat.find('(')?, stat.rfind(')')?);
        let mut rest = stat.get(b + 1..)?.split_whitespace();
        let state = rest.next()?;
        let ppid = rest.next()?.parse().ok()?;
        (a < b && !state.starts_with(['Z', 'X'])).then(|| (stat[a + 1..b].to_string(), ppid))
    }

    /// Stops test servers whose test is gone (`jackd -n hf-test-<pid>-<n>` no longer the child of
    /// `<pid>`: its test process was killed before it could stop it), which would otherwise keep
    /// their slots for ever: SIGTERM, so that they free their slots themselves, and SIGKILL after
    /// 5 s. Returns how many it stopped.
    fn stop_orphaned_test_servers(file: &std::fs::File, ours: &str) -> Result<usize> {
        let mut orphans = Vec::new();
        for slot in read_slots(file)? {
            let Some(rest) = slot.name.strip_prefix(ours) else { continue };
            let Some((test, len)) = test_server_part(rest) else { continue };
            if &rest[len..] != ":" {
                continue;
            }
            if let Some((name, parent)) = process(slot.pid) {
                if name == "jackd" && parent != test {
                    // SAFETY: kill(2) on a jackd of ours that nobody waits for any more.
                    unsafe { libc::kill(slot.pid, libc::SIGTERM) };
                    orphans.push(slot.pid);
                }
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while orphans.iter().any(|&p| process(p).is_some()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        for &p in &orphans {
            if process(p).is_some() {
                // SAFETY: as above; it did not stop on SIGTERM.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        Ok(orphans.len())
    }

    /// Frees the slots of dead servers (as jackd itself frees a dead server's slot for a new
    /// server of the same name) after stopping orphaned test servers, and removes the socket and
    /// semaphore files that `hf-test-` servers of this user left in /dev/shm without a slot. A
    /// slot of one of our test servers whose pid now belongs to another program is dead too.
    /// Returns how many slots it freed.
    pub fn reclaim_dead_servers() -> Result<usize> {
        let file = match OpenOptions::new().read(true).write(true).open(REGISTRY) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).with_context(|| format!("cannot open {REGISTRY}")),
        };
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        let ours = format!("jack-{uid}:{TEST_SERVER_PREFIX}");
        // Without the registry lock: a stopping jackd takes it to free its slot.
        let orphans = stop_orphaned_test_servers(&file, &ours)?;
        if orphans > 0 {
            eprintln!("stopped {orphans} JACK test server(s) whose test was gone");
        }
        let lock = Lock::take()?;
        let mut freed = 0;
        let mut registered = Vec::new();
        for (i, slot) in read_slots(&file)?.into_iter().enumerate() {
            if slot.pid == 0 {
                continue;
            }
            let test_server = slot.name.starts_with(&ours);
            let alive = match process(slot.pid) {
                Some((name, _)) => !test_server || name == "jackd",
                None => false,
            };
            if alive {
                registered.push(slot.name);
            } else {
                file.write_all_at(&[0u8; SLOT], (HEADER + i * SLOT) as u64)
                    .with_context(|| format!("cannot write {REGISTRY}"))?;
                freed += 1;
            }
        }
        // What jackd itself removes when it exits cleanly, before it gives its slot back: its
        // sockets (`jack_<server>_…`) and its clients' semaphores (`jack_sem.<uid>_<server>_…`).
        // Those of a test server that holds no slot are left over: a starting server takes its
        // slot (under the lock, still held here) before it makes them.
        if let Ok(dir) = std::fs::read_dir("/dev/shm") {
            let sem_prefix = format!("jack_sem.{uid}_");
            for entry in dir.flatten() {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                let Some(rest) = file_name.strip_prefix(&sem_prefix).or_else(|| file_name.strip_prefix("jack_")) else {
                    continue;
                };
                let Some(rest) = rest.strip_prefix(TEST_SERVER_PREFIX) else { continue };
                let Some((_, len)) = test_server_part(rest) else { continue };
                if !rest[len..].starts_with('_') {
                    continue;
                }
                let server = format!("jack-{uid}:{TEST_SERVER_PREFIX}{}:", &rest[..len]);
                if !registered.contains(&server) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        drop(lock);
        Ok(freed)
    }
}

// ----------------------------------------------------------------------------------------------
// Audio files
// ----------------------------------------------------------------------------------------------

/// Per-channel samples plus rate.
#[derive(Debug, Clone)]
pub struct Audio {
    /// `[channel][sample]`.
    pub channels: Vec<Vec<f32>>,
    pub sample_rate: u32,
}

impl Audio {
    /// The same audio without its first `n` samples (e.g. a host's output with the reported
    /// latency removed, to line it up with the input).
    pub fn skip_start(&self, n: usize) -> Audio {
        Audio {
            channels: self.channels.iter().map(|c| c[n.min(c.len())..].to_vec()).collect(),
            sample_rate: self.sample_rate,
        }
    }

    pub fn len(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Mean of the channels.
    pub fn mono(&self) -> Vec<f32> {
        let n = self.channels.len().max(1) as f32;
        (0..self.len())
            .map(|i| self.channels.iter().map(|c| c[i]).sum::<f32>() / n)
            .collect()
    }
}

pub fn read_wav(path: &Path) -> Result<Audio> {
    let mut reader = hound::WavReader::open(path)
        .with_context(|| format!("cannot open WAV {}", path.display()))?;
    let spec = reader.spec();
    let ch = spec.channels as usize;
    if ch == 0 {
        bail!("WAV {} has no channels", path.display());
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()?
        }
    };
    let mut channels = vec![Vec::with_capacity(interleaved.len() / ch.max(1)); ch];
    for frame in interleaved.chunks_exact(ch) {
        for (c, s) in frame.iter().enumerate() {
            channels[c].push(*s);
        }
    }
    Ok(Audio {
        channels,
        sample_rate: spec.sample_rate,
    })
}

/// Writes 32-bit float WAV.
pub fn write_wav(path: &Path, channels: &[Vec<f32>], sample_rate: u32) -> Result<()> {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .with_context(|| format!("cannot create {}", path.display()))?;
    for i in 0..channels.first().map_or(0, Vec::len) {
        for c in channels {
            w.write_sample(c[i])?;
        }
    }
    w.finalize()?;
    Ok(())
}

/// A sung note from the runtime's formant [`Singer`](hummingface_runtime::Singer): `midi` pitch
/// on an open "a" vowel from `start_s` for `dur_s` seconds, in `total_s` seconds of mono audio.
pub fn sung_note(midi: f32, start_s: f32, dur_s: f32, total_s: f32, sample_rate: u32) -> Vec<f32> {
    use hummingface_runtime::{Singer, SungNote, Vowel};
    let note = SungNote {
        start_s,
        dur_s,
        midi,
        vowel: Vowel::A,
        level: 0.5,
        consonant: false,
    };
    Singer::default().render(&[note], sample_rate as f32, total_s)
}

/// A sung melody (several notes, with rests) for note-event tests: (midi, start_s, dur_s).
pub fn sung_melody(notes: &[(f32, f32, f32)], total_s: f32, sample_rate: u32) -> Vec<f32> {
    use hummingface_runtime::{Singer, SungNote, Vowel};
    let notes: Vec<SungNote> = notes
        .iter()
        .enumerate()
        .map(|(i, &(midi, start_s, dur_s))| SungNote {
            start_s,
            dur_s,
            midi,
            vowel: if i % 2 == 0 { Vowel::A } else { Vowel::O },
            level: 0.5,
            consonant: i % 2 == 1,
        })
        .collect();
    Singer::default().render(&notes, sample_rate as f32, total_s)
}

/// RMS of a slice.
pub fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() / x.len() as f64).sqrt() as f32
}

/// Max |a[i] - b[i]| over the common length.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Largest normalised cross-correlation of `a` against `b` shifted by any lag in `lags`
/// (`a[i]` vs `b[i - lag]`): 1 = `a` is a scaled, delayed copy of `b`.
pub fn max_normalised_xcorr(
    a: &[f32],
    b: &[f32],
    lags: std::ops::RangeInclusive<usize>,
) -> (f32, usize) {
    let mut best = (0.0f32, 0usize);
    for lag in lags {
        if lag >= a.len() {
            break;
        }
        let n = (a.len() - lag).min(b.len());
        let (aa, bb) = (&a[lag..lag + n], &b[..n]);
        let dot: f64 = aa.iter().zip(bb).map(|(x, y)| *x as f64 * *y as f64).sum();
        let ea: f64 = aa.iter().map(|x| (*x as f64).powi(2)).sum();
        let eb: f64 = bb.iter().map(|x| (*x as f64).powi(2)).sum();
        if ea > 0.0 && eb > 0.0 {
            let c = (dot / (ea * eb).sqrt()).abs() as f32;
            if c > best.0 {
                best = (c, lag);
            }
        }
    }
    best
}

// ----------------------------------------------------------------------------------------------
// MIDI files
// ----------------------------------------------------------------------------------------------

/// A note read back from a Standard MIDI File.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MidiNote {
    pub key: u8,
    pub velocity: u8,
    pub start_s: f64,
    pub end_s: f64,
}

/// Reads every note (on → matching off, or on with velocity 0) of every track, honouring tempo
/// changes; notes still held at the end close at the last event.
pub fn read_midi_notes(path: &Path) -> Result<Vec<MidiNote>> {
    use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let smf =
        Smf::parse(&bytes).map_err(|e| anyhow!("{}: not a MIDI file: {e}", path.display()))?;
    let tpq = match smf.header.timing {
        Timing::Metrical(t) => t.as_int() as f64,
        Timing::Timecode(..) => bail!("{}: SMPTE timing not supported", path.display()),
    };
    // Merge all tracks' events on absolute ticks, then walk with the tempo map.
    let mut events = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        for ev in track {
            tick += ev.delta.as_int() as u64;
            events.push((tick, ev.kind));
        }
    }
    events.sort_by_key(|e| e.0);
    let mut tempo = 500_000.0f64; // µs per quarter
    let (mut last_tick, mut secs) = (0u64, 0.0f64);
    let mut open: Vec<(u8, u8, u8, f64)> = Vec::new(); // channel, key, vel, start
    let mut notes = Vec::new();
    for (tick, kind) in events {
        secs += (tick - last_tick) as f64 / tpq * tempo / 1e6;
        last_tick = tick;
        match kind {
            TrackEventKind::Meta(MetaMessage::Tempo(t)) => tempo = t.as_int() as f64,
            TrackEventKind::Midi { channel, message } => {
                let ch = channel.as_int();
                let (key, vel, on) = match message {
                    MidiMessage::NoteOn { key, vel } => {
                        (key.as_int(), vel.as_int(), vel.as_int() > 0)
                    }
                    MidiMessage::NoteOff { key, vel } => (key.as_int(), vel.as_int(), false),
                    _ => continue,
                };
                if on {
                    open.push((ch, key, vel, secs));
                } else if let Some(i) = open.iter().position(|o| o.0 == ch && o.1 == key) {
                    let (_, k, v, s) = open.remove(i);
                    notes.push(MidiNote {
                        key: k,
                        velocity: v,
                        start_s: s,
                        end_s: secs,
                    });
                }
            }
            _ => {}
        }
    }
    for (_, k, v, s) in open {
        notes.push(MidiNote {
            key: k,
            velocity: v,
            start_s: s,
            end_s: secs,
        });
    }
    notes.sort_by(|a, b| a.start_s.total_cmp(&b.start_s).then(a.key.cmp(&b.key)));
    Ok(notes)
}

// ----------------------------------------------------------------------------------------------
// Python venv with pedalboard
// ----------------------------------------------------------------------------------------------

/// `<root>/.venv/bin/python`, creating the venv with `tests/hosts/setup_venv.sh` first if it does
/// not import pedalboard yet. Serialised across test processes with a lock file.
pub fn pedalboard_python() -> Result<PathBuf> {
    let root = workspace_root();
    let python = root.join(".venv").join("bin").join("python");
    let ready = |py: &Path| {
        py.exists()
            && Command::new(py)
                .args(["-c", "import pedalboard, numpy, soundfile"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
    };
    if ready(&python) {
        return Ok(python);
    }
    let lock_path = target_dir().join("hf-tests").join("venv.lock");
    fs::create_dir_all(lock_path.parent().unwrap())?;
    let lock = fs::File::create(&lock_path)?;
    // SAFETY: flock on a file descriptor we own; released when `lock` is closed.
    unsafe {
        use std::os::fd::AsRawFd;
        libc::flock(lock.as_raw_fd(), libc::LOCK_EX);
    }
    if !ready(&python) {
        let script = root.join("tests").join("hosts").join("setup_venv.sh");
        run_with_timeout(
            Command::new("bash").arg(&script),
            Duration::from_secs(600),
            "setup_venv.sh",
        )?
        .check("tests/hosts/setup_venv.sh")?;
    }
    drop(lock);
    if !ready(&python) {
        bail!(
            "{} still cannot import pedalboard after setup_venv.sh",
            python.display()
        );
    }
    Ok(python)
}

/// Runs `tests/hosts/pedalboard_host.py` and returns its JSON report.
pub fn run_pedalboard(
    plugin: &Path,
    input: &Path,
    output: &Path,
    extra: &[&str],
) -> Result<serde_json::Value> {
    let python = pedalboard_python()?;
    let script = workspace_root()
        .join("tests")
        .join("hosts")
        .join("pedalboard_host.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg(plugin)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra);
    let done = run_with_timeout(&mut cmd, CHILD_TIMEOUT, "pedalboard_host.py")?
        .check("pedalboard_host.py")?;
    parse_last_json(&done.stdout)
        .with_context(|| format!("pedalboard_host.py stderr:\n{}", tail(&done.stderr, 4000)))
}

/// Runs `hf-clap-host` with `--json` and returns its report.
pub fn run_clap_host(
    plugin: &Path,
    input: &Path,
    output: &Path,
    extra: &[&str],
) -> Result<serde_json::Value> {
    let mut cmd = Command::new(clap_host_bin());
    cmd.arg(plugin)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .arg("--json")
        .args(extra);
    let done = run_with_timeout(&mut cmd, CHILD_TIMEOUT, "hf-clap-host")?.check("hf-clap-host")?;
    parse_last_json(&done.stdout)
        .with_context(|| format!("hf-clap-host stderr:\n{}", tail(&done.stderr, 4000)))
}

/// The last line of `stdout` that parses as a JSON object.
pub fn parse_last_json(stdout: &str) -> Result<serde_json::Value> {
    stdout
        .lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .ok_or_else(|| anyhow!("no JSON object in output:\n{}", tail(stdout, 4000)))
}

/// The parameter names a host reported, lower-cased.
pub fn param_names(report: &serde_json::Value) -> Vec<String> {
    report["params"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().or_else(|| p["name"].as_str()))
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

/// The knobs every host must see.
pub const REQUIRED_PARAMS: [&str; 6] = ["mix", "gain", "transpose", "key", "scale", "sensitivity"];

/// Fails unless every name in [`REQUIRED_PARAMS`] is a parameter name (or a word of one).
pub fn check_required_params(host: &str, names: &[String]) -> Result<()> {
    let missing: Vec<&str> = REQUIRED_PARAMS
        .iter()
        .copied()
        .filter(|want| {
            !names
                .iter()
                .any(|n| n == want || n.split_whitespace().any(|w| w == *want))
        })
        .collect();
    if !missing.is_empty() {
        bail!("{host} lists no parameter for {missing:?}; it lists {names:?}");
    }
    Ok(())
}

/// Every thread's stack of process `pid` (`gdb -p PID -batch`, at most 30 s), or `None` when gdb
/// is not installed or cannot attach. For the message of a child that hangs.
pub fn thread_stacks(pid: i32) -> Option<String> {
    if !Path::new("/usr/bin/gdb").exists() {
        return None;
    }
    let out = Command::new("timeout")
        .args(["30", "/usr/bin/gdb", "-p", &pid.to_string(), "-batch", "-nx", "-ex", "thread apply all bt 24"])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.contains("Thread").then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_hangs_is_killed_and_its_stacks_shown() {
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        let started = Instant::now();
        let err = Running::spawn(&mut cmd, "sleep 60").unwrap().wait(Duration::from_millis(300)).unwrap_err().to_string();
        assert!(err.contains("sleep 60 did not finish within 0 s and was killed"), "{err}");
        // With gdb installed and allowed to attach, the stacks come with the message.
        if err.contains("its threads when it was killed") {
            assert!(err.contains("Thread 1"), "{err}");
        } else {
            eprintln!("no stacks (gdb not installed or not allowed to attach)");
        }
        assert!(started.elapsed() < Duration::from_secs(40), "waited {:?}", started.elapsed());
    }

    #[test]
    fn reads_notes_back_from_a_midi_file() {
        use midly::num::{u15, u24, u28, u4, u7};
        use midly::{
            Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind,
        };
        let ev = |delta: u32, kind| TrackEvent {
            delta: u28::new(delta),
            kind,
        };
        let on = |key: u8, vel: u8| TrackEventKind::Midi {
            channel: u4::new(0),
            message: MidiMessage::NoteOn {
                key: u7::new(key),
                vel: u7::new(vel),
            },
        };
        let off = |key: u8| TrackEventKind::Midi {
            channel: u4::new(0),
            message: MidiMessage::NoteOff {
                key: u7::new(key),
                vel: u7::new(0),
            },
        };
        // 120 bpm, 480 tpq: 960 ticks per second. Then 60 bpm from 2 s on: 480 ticks per second.
        let track = vec![
            ev(
                0,
                TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000))),
            ),
            ev(480, on(57, 100)), // 0.5 s
            ev(480, off(57)),     // 1.0 s
            ev(480, on(60, 64)),  // 1.5 s
            ev(
                480,
                TrackEventKind::Meta(MetaMessage::Tempo(u24::new(1_000_000))),
            ), // 2.0 s
            ev(240, on(60, 0)),   // 2.5 s: note-on with velocity 0 ends the note
            ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let smf = Smf {
            header: Header {
                format: Format::SingleTrack,
                timing: Timing::Metrical(u15::new(480)),
            },
            tracks: vec![track],
        };
        let dir = scratch_dir("midi-reader");
        let path = dir.join("t.mid");
        smf.save(&path).unwrap();
        let notes = read_midi_notes(&path).unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!((notes[0].key, notes[0].velocity), (57, 100));
        assert!(
            (notes[0].start_s - 0.5).abs() < 1e-9 && (notes[0].end_s - 1.0).abs() < 1e-9,
            "{notes:?}"
        );
        assert_eq!(notes[1].key, 60);
        assert!(
            (notes[1].start_s - 1.5).abs() < 1e-9 && (notes[1].end_s - 2.5).abs() < 1e-9,
            "{notes:?}"
        );
    }

    #[test]
    fn required_params_match_whole_words() {
        let names: Vec<String> = [
            "sensitivity",
            "key",
            "scale",
            "transpose",
            "mix",
            "output gain",
        ]
        .map(String::from)
        .to_vec();
        check_required_params("t", &names).unwrap();
        let names: Vec<String> = [
            "sensitivity",
            "keyboard",
            "scale",
            "transpose",
            "mix",
            "gain",
        ]
        .map(String::from)
        .to_vec();
        assert!(check_required_params("t", &names).is_err());
    }
}
