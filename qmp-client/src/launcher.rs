//! Starts `qemu-system-x86_64`, `qemu-storage-daemon` or `qemu-ga` with a private
//! socket in a fresh temporary directory, connects to it, and kills and reaps the
//! process (and removes the directory) on drop. Usable from any integration test.
//!
//! [`Launcher::guest`] boots a Linux kernel and initrd (such as the guest `cargo xtask
//! guest build` makes) with a guest agent port whose host end is a second private
//! socket, so one [`Instance`] gives both a QMP client ([`Instance::connect`]) and a
//! guest agent client ([`Instance::connect_agent`]).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::conn::Endpoint;
use super::error::Error;
use super::options::Options;
use super::qga::Qga;
use super::qmp::Qmp;

/// How to install QEMU 10.0.2 on this project's machines (Debian bookworm).
const INSTALL: &str = "Install QEMU 10.0.2 as root with:\n  \
sed -i 's/^Suites: bookworm bookworm-updates$/Suites: bookworm bookworm-updates bookworm-backports/' /etc/apt/sources.list.d/debian.sources\n  \
apt-get update && apt-get install -y --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils qemu-guest-agent\n\
(do not install qemu-system-x86 from plain bookworm: that is QEMU 7.2).";

/// Which program a [`Launcher`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `qemu-system-x86_64` (QMP).
    Qemu,
    /// `qemu-storage-daemon` (QMP).
    StorageDaemon,
    /// `qemu-ga`, the guest agent, listening on a Unix socket on the host.
    GuestAgent,
}

impl Program {
    /// The executable's name.
    pub fn binary_name(self) -> &'static str {
        match self {
            Program::Qemu => "qemu-system-x86_64",
            Program::StorageDaemon => "qemu-storage-daemon",
            Program::GuestAgent => "qemu-ga",
        }
    }

    /// The environment variable that overrides the executable's path.
    pub fn env_var(self) -> &'static str {
        match self {
            Program::Qemu => "QMP_TYPES_QEMU",
            Program::StorageDaemon => "QMP_TYPES_STORAGE_DAEMON",
            Program::GuestAgent => "QMP_TYPES_QEMU_GA",
        }
    }
}

/// Finds `name` on `PATH` (also in `/usr/sbin` and `/sbin`, where Debian puts
/// `qemu-ga`), or fails with the install instructions.
pub fn find_binary(name: &str) -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    for dir in std::env::split_paths(&path).chain(extra) {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::MissingBinary {
        program: name.to_owned(),
        install: INSTALL.to_owned(),
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A private temporary directory (mode 0700), removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> io::Result<TempDir> {
        static N: AtomicU64 = AtomicU64::new(0);
        let mut base = std::env::temp_dir();
        // sun_path holds 107 bytes: fall back to /tmp for long TMPDIRs.
        if base.as_os_str().len() > 60 {
            base = PathBuf::from("/tmp");
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0..100u32 {
            let dir = base.join(format!(
                "qmp-{}-{}-{:x}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed),
                stamp.wrapping_add(attempt)
            ));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temp dir name",
        ))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What [`Launcher::guest`] boots, and the devices it adds for it.
#[derive(Debug, Clone)]
struct GuestBoot {
    kernel: PathBuf,
    initrd: PathBuf,
    append: Vec<String>,
    memory_mib: u32,
    root_ports: u32,
    boot_timeout: Duration,
}

/// The kernel command line [`Launcher::guest`] starts with: the console on the serial
/// port (written to [`Instance::console`]) and a reboot, which `-no-reboot` turns into
/// QEMU's exit, on panic.
const GUEST_APPEND: &str = "console=ttyS0 panic=-1";

/// Configures and starts a QEMU process. See the [module docs](super) for an example.
#[derive(Debug, Clone)]
pub struct Launcher {
    program: Program,
    guest: Option<GuestBoot>,
    binary: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    data_dirs: Vec<PathBuf>,
    args: Vec<OsString>,
    default_args: bool,
    pretty: bool,
    options: Options,
    start_timeout: Duration,
    socket: Option<PathBuf>,
}

impl Launcher {
    fn new(program: Program) -> Launcher {
        Launcher {
            program,
            guest: None,
            binary: None,
            env: Vec::new(),
            data_dirs: Vec::new(),
            args: Vec::new(),
            default_args: true,
            pretty: false,
            options: Options::default(),
            start_timeout: Duration::from_secs(10),
            socket: None,
        }
    }

    /// `qemu-system-x86_64`; by default with `-machine none -nodefaults -display none`
    /// (`-machine`/`-M` or `-display` in the extra arguments replace those defaults).
    pub fn qemu() -> Launcher {
        Launcher::new(Program::Qemu)
    }

    /// `qemu-system-x86_64` booting a Linux guest from `kernel` and `initrd`, with a
    /// guest agent port.
    ///
    /// The machine is `-machine q35 -m 128` (QEMU's default accelerator, TCG, unless
    /// extra arguments say otherwise) with:
    ///
    /// - `-kernel KERNEL -initrd INITRD -append 'console=ttyS0 panic=-1'` (more with
    ///   [`Launcher::append`]) and `-no-reboot`, so a guest panic or reboot ends QEMU;
    /// - `-serial file:console.log` in the private directory ([`Instance::console`]);
    /// - `-device pcie-root-port,id=rp1,chassis=1` (more with [`Launcher::root_ports`]):
    ///   the slot for PCI hot-plug (`device_add ... bus=rp1`);
    /// - `-device virtio-serial-pci,id=vser0` and a `virtserialport` named
    ///   `org.qemu.guest_agent.0` whose chardev is a socket `qga.sock` in the private
    ///   directory ([`Instance::agent_socket_path`], [`Instance::connect_agent`]).
    ///
    /// The guest must start `qemu-ga -m virtio-serial` on that port itself; the guest of
    /// `cargo xtask guest build` (in `<target dir>/guest/`) does.
    ///
    /// # Arguments
    ///
    /// * `kernel` - a bootable kernel image (`vmlinuz`).
    /// * `initrd` - its initial RAM disk.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use qmp_client::Launcher;
    /// let vm = Launcher::guest("target/guest/vmlinuz", "target/guest/initrd.gz").spawn()?;
    /// let qmp = vm.connect()?;
    /// // The agent answers once the guest has booted (about 7 s under TCG).
    /// let qga = vm.connect_agent()?;
    /// let info = qga.execute(qmp_client::Request::name("guest-info"))?;
    /// println!("agent {}", info.get());
    /// # Ok::<(), qmp_client::Error>(())
    /// ```
    pub fn guest(kernel: impl Into<PathBuf>, initrd: impl Into<PathBuf>) -> Launcher {
        let mut l = Launcher::new(Program::Qemu);
        l.guest = Some(GuestBoot {
            kernel: kernel.into(),
            initrd: initrd.into(),
            append: Vec::new(),
            memory_mib: 128,
            root_ports: 1,
            boot_timeout: Duration::from_secs(60),
        });
        l
    }

    /// Adds words to the guest kernel's command line (for [`Launcher::guest`]; ignored
    /// otherwise), after `console=ttyS0 panic=-1`.
    pub fn append(mut self, words: impl AsRef<str>) -> Launcher {
        if let Some(g) = &mut self.guest {
            g.append.push(words.as_ref().to_owned());
        }
        self
    }

    /// The guest's memory in MiB (for [`Launcher::guest`]; default 128).
    pub fn memory(mut self, mib: u32) -> Launcher {
        if let Some(g) = &mut self.guest {
            g.memory_mib = mib;
        }
        self
    }

    /// How many `pcie-root-port`s the guest gets (for [`Launcher::guest`]; default 1),
    /// with ids `rp1`, `rp2`, ... and chassis numbers 1, 2, ...; each takes one
    /// hot-plugged device.
    pub fn root_ports(mut self, n: u32) -> Launcher {
        if let Some(g) = &mut self.guest {
            g.root_ports = n;
        }
        self
    }

    /// How long [`Instance::connect_agent`] waits for the guest to boot and its agent
    /// to answer (for [`Launcher::guest`]; default 60 s).
    pub fn boot_timeout(mut self, t: Duration) -> Launcher {
        if let Some(g) = &mut self.guest {
            g.boot_timeout = t;
        }
        self
    }

    /// `qemu-storage-daemon` with a QMP monitor.
    pub fn storage_daemon() -> Launcher {
        Launcher::new(Program::StorageDaemon)
    }

    /// `qemu-ga` listening on a Unix socket (`-m unix-listen`), state in the temp dir.
    pub fn guest_agent() -> Launcher {
        Launcher::new(Program::GuestAgent)
    }

    /// Uses this executable instead of searching the environment variable
    /// ([`Program::env_var`]) and `PATH`.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Launcher {
        self.binary = Some(path.into());
        self
    }

    /// Sets an environment variable for the process (e.g. `QEMU_MODULE_DIR`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use qmp_client::Launcher;
    /// let vm = Launcher::qemu()
    ///     .binary("/opt/qemu/bin/qemu-system-x86_64")
    ///     .env("QEMU_MODULE_DIR", "/opt/qemu/lib/qemu")
    ///     .spawn()?;
    /// # Ok::<(), qmp_client::Error>(())
    /// ```
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Launcher {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Adds a folder where `qemu-system-x86_64` looks for firmware and ROMs (`-L`,
    /// searched in the order added, before the build's own folders). Ignored for the
    /// storage daemon and the guest agent.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use qmp_client::Launcher;
    /// let vm = Launcher::qemu().data_dir("/usr/share/seabios").args(["-machine", "pc"]).spawn()?;
    /// # Ok::<(), qmp_client::Error>(())
    /// ```
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Launcher {
        self.data_dirs.push(dir.into());
        self
    }

    /// Runs the `qemu-system-x86_64` of Debian packages unpacked under `root` (with
    /// `dpkg-deb -x`, beside an installed QEMU of another version): the binary
    /// `root/usr/bin/qemu-system-x86_64`, its modules from
    /// `root/usr/lib/x86_64-linux-gnu/qemu` (`QEMU_MODULE_DIR`; otherwise it would load
    /// the installed QEMU's modules and fail), and firmware from `root/usr/share/qemu`,
    /// then the installed `/usr/share/seabios`, `/usr/lib/ipxe/qemu` and
    /// `/usr/share/qemu` (those that exist): Debian's `qemu-system-x86` package
    /// carries no BIOS of its own.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use qmp_client::Launcher;
    /// // cargo xtask prepare unpacks Debian 12's QEMU 7.2 there.
    /// let vm = Launcher::qemu()
    ///     .unpacked("target/qemu-7.2/root")
    ///     .args(["-machine", "q35", "-S"])
    ///     .spawn()?;
    /// let qmp = vm.connect()?;
    /// assert_eq!(qmp.greeting().unwrap().version.major, 7);
    /// # Ok::<(), qmp_client::Error>(())
    /// ```
    pub fn unpacked(self, root: impl AsRef<Path>) -> Launcher {
        let root = root.as_ref();
        let mut l = self
            .binary(root.join("usr/bin").join(Program::Qemu.binary_name()))
            .env(
                "QEMU_MODULE_DIR",
                root.join("usr/lib/x86_64-linux-gnu/qemu"),
            );
        let own = root.join("usr/share/qemu");
        let installed = [
            "/usr/share/seabios",
            "/usr/lib/ipxe/qemu",
            "/usr/share/qemu",
        ]
        .map(PathBuf::from);
        for dir in std::iter::once(own).chain(installed) {
            if dir.is_dir() {
                l = l.data_dir(dir);
            }
        }
        l
    }

    /// Appends one argument. The process runs in the private temporary directory, so
    /// relative paths (e.g. of extra sockets) land there.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Launcher {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Launcher
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Leaves out the default `-machine none -nodefaults -display none`.
    pub fn no_default_args(mut self) -> Launcher {
        self.default_args = false;
        self
    }

    /// Makes the QMP monitor pretty-print (multi-line) its output.
    pub fn pretty(mut self, yes: bool) -> Launcher {
        self.pretty = yes;
        self
    }

    /// Connection options for [`Instance::connect`].
    pub fn options(mut self, options: Options) -> Launcher {
        self.options = options;
        self
    }

    /// How long to wait for the socket to accept connections (default 10 s).
    pub fn start_timeout(mut self, t: Duration) -> Launcher {
        self.start_timeout = t;
        self
    }

    fn resolve_binary(&self) -> Result<PathBuf, Error> {
        if let Some(b) = &self.binary {
            return Ok(b.clone());
        }
        if let Some(b) = std::env::var_os(self.program.env_var()) {
            return Ok(b.into());
        }
        find_binary(self.program.binary_name())
    }

    /// Puts the monitor (or agent) socket at `path` instead of the private directory:
    /// for a QEMU that replaces one that exited, at the address its clients know
    /// ([`Qmp::reconnect`](crate::Qmp::reconnect)). A stale socket file there is removed.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Launcher {
        self.socket = Some(path.into());
        self
    }

    /// Starts the process and waits until its socket exists. The process is killed
    /// when the returned [`Instance`] drops.
    pub fn spawn(&self) -> Result<Instance, Error> {
        let binary = self.resolve_binary()?;
        let name = self.program.binary_name();
        let launch_err = |reason: String| Error::Launch {
            program: name.to_owned(),
            reason,
        };
        let dir =
            TempDir::new().map_err(|e| launch_err(format!("cannot create a temp dir: {e}")))?;
        let socket = match &self.socket {
            Some(p) => {
                let _ = fs::remove_file(p);
                p.clone()
            }
            None => dir.0.join(if self.program == Program::GuestAgent {
                "qga.sock"
            } else {
                "qmp.sock"
            }),
        };
        let sock = socket.display().to_string();
        let mut agent = None;
        let mut console = None;
        let pretty = if self.pretty { ",pretty=on" } else { "" };
        let mut cmd = Process::new(&binary);
        match self.program {
            Program::Qemu => {
                let has = |opts: &[&str]| self.args.iter().any(|a| opts.iter().any(|o| a == *o));
                if self.default_args {
                    if !has(&["-machine", "-M"]) {
                        let machine = if self.guest.is_some() { "q35" } else { "none" };
                        cmd.args(["-machine", machine]);
                    }
                    cmd.arg("-nodefaults");
                    if !has(&["-display", "-nographic"]) {
                        cmd.args(["-display", "none"]);
                    }
                }
                for dir in &self.data_dirs {
                    cmd.arg("-L").arg(dir);
                }
                cmd.args([
                    "-chardev",
                    &format!("socket,id=qmp0,path={sock},server=on,wait=off"),
                    "-mon",
                    &format!("chardev=qmp0,mode=control{pretty}"),
                ]);
                if let Some(g) = &self.guest {
                    let agent_path = dir.0.join("qga.sock");
                    let console_path = dir.0.join("console.log");
                    let mut append = GUEST_APPEND.to_owned();
                    for words in &g.append {
                        append.push(' ');
                        append.push_str(words);
                    }
                    cmd.arg("-m").arg(g.memory_mib.to_string());
                    cmd.arg("-kernel").arg(&g.kernel);
                    cmd.arg("-initrd").arg(&g.initrd);
                    cmd.arg("-append").arg(append);
                    cmd.arg("-no-reboot");
                    cmd.arg("-serial")
                        .arg(format!("file:{}", console_path.display()));
                    for n in 1..=g.root_ports {
                        cmd.arg("-device")
                            .arg(format!("pcie-root-port,id=rp{n},chassis={n}"));
                    }
                    cmd.args([
                        "-chardev",
                        &format!(
                            "socket,id=qga0,path={},server=on,wait=off",
                            agent_path.display()
                        ),
                        "-device",
                        "virtio-serial-pci,id=vser0",
                        "-device",
                        "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0,id=qga-port",
                    ]);
                    agent = Some(agent_path);
                    console = Some(console_path);
                }
            }
            Program::StorageDaemon => {
                cmd.args([
                    "--chardev",
                    &format!("socket,id=qmp0,path={sock},server=on,wait=off"),
                    "--monitor",
                    &format!("chardev=qmp0{pretty}"),
                ]);
            }
            Program::GuestAgent => {
                let d = dir.0.display().to_string();
                cmd.args(["-m", "unix-listen", "-p", &sock, "-t", &d]);
                cmd.args(["-f", &format!("{d}/qga.pid")]);
            }
        }
        cmd.args(&self.args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let stderr_path = dir.0.join("stderr.log");
        let stderr = fs::File::create(&stderr_path)
            .map_err(|e| launch_err(format!("cannot create {}: {e}", stderr_path.display())))?;
        // Relative paths in extra arguments land in the private directory.
        cmd.current_dir(&dir.0);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::MissingBinary {
                    program: binary.display().to_string(),
                    install: INSTALL.to_owned(),
                }
            } else {
                launch_err(format!("cannot start {}: {e}", binary.display()))
            }
        })?;
        let mut inst = Instance {
            child,
            socket,
            stderr_path,
            program: self.program,
            options: self.options.clone(),
            start_timeout: self.start_timeout,
            agent,
            console,
            boot_timeout: self
                .guest
                .as_ref()
                .map_or(Duration::ZERO, |g| g.boot_timeout),
            reaped: std::sync::Mutex::new(None),
            dir,
        };
        let deadline = Instant::now() + self.start_timeout;
        while !inst.socket.exists() {
            inst.check_alive()?;
            if Instant::now() >= deadline {
                return Err(launch_err(format!(
                    "socket {} did not appear within {:?}; stderr: {}",
                    inst.socket.display(),
                    self.start_timeout,
                    inst.stderr()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(inst)
    }
}

/// A running QEMU process with its private socket. Killed (SIGKILL) and reaped on
/// drop, and its temporary directory removed.
#[derive(Debug)]
pub struct Instance {
    child: Child,
    socket: PathBuf,
    stderr_path: PathBuf,
    program: Program,
    options: Options,
    start_timeout: Duration,
    /// The host end of the guest agent's port ([`Launcher::guest`]).
    agent: Option<PathBuf>,
    /// The guest's serial console log ([`Launcher::guest`]).
    console: Option<PathBuf>,
    boot_timeout: Duration,
    /// The exit status once reaped by `wait_exit`/`kill` (waitid cannot see it then).
    reaped: std::sync::Mutex<Option<std::process::ExitStatus>>,
    // Last: removed after the process is gone.
    dir: TempDir,
}

impl Instance {
    /// The monitor (or agent) socket path.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The private temporary directory (removed on drop); a place for test files.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Which program runs.
    pub fn program(&self) -> Program {
        self.program
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends a signal (e.g. `libc::SIGSTOP`) to the process.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        // SAFETY: kill(2) with our own child's pid.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Kills the process now and reaps it.
    pub fn kill(&mut self) -> io::Result<()> {
        let _ = self.child.kill();
        let status = self.child.wait()?;
        *self.reaped.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit by itself; returns whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                *self.reaped.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The exit status once the process has exited (`None` while it runs). Does not
    /// reap it, so [`Instance::wait_exit_status`] and drop still work.
    pub fn exit_status(&self) -> Option<std::process::ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        if let Some(s) = *self.reaped.lock().unwrap_or_else(|p| p.into_inner()) {
            return Some(s);
        }
        // SAFETY: siginfo_t is plain data; waitid fills it for our own child.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.child.id() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid and si_status are valid for a WEXITED report.
        let (pid, status, code) = unsafe { (info.si_pid(), info.si_status(), info.si_code) };
        if r != 0 || pid == 0 {
            return None;
        }
        Some(if code == libc::CLD_EXITED {
            std::process::ExitStatus::from_raw((status & 0xff) << 8)
        } else {
            std::process::ExitStatus::from_raw(status & 0x7f)
        })
    }

    /// Waits up to `timeout` for the process to exit by itself and returns its exit
    /// status (`None`: still running).
    pub fn wait_exit_status(
        &mut self,
        timeout: Duration,
    ) -> io::Result<Option<std::process::ExitStatus>> {
        if self.wait_exit(timeout)? {
            return self.child.try_wait();
        }
        Ok(None)
    }

    /// A launch error when the process has exited, naming its exit status.
    fn exited_error(&self) -> Option<Error> {
        let status = self.exit_status()?;
        Some(Error::Launch {
            program: self.program.binary_name().to_owned(),
            reason: format!("exited ({status}); stderr: {}", self.stderr().trim()),
        })
    }

    fn check_alive(&mut self) -> Result<(), Error> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(Error::Launch {
                program: self.program.binary_name().to_owned(),
                reason: format!("exited early ({status}); stderr: {}", self.stderr().trim()),
            });
        }
        Ok(())
    }

    /// Connects a QMP client with the launcher's options.
    pub fn connect(&self) -> Result<Qmp, Error> {
        self.connect_with(&self.options)
    }

    /// Connects a QMP client with these options.
    pub fn connect_with(&self, options: &Options) -> Result<Qmp, Error> {
        self.retry(|| Qmp::connect(Endpoint::Unix(self.socket.clone()), options))
    }

    /// Connects the tokio QMP client with the launcher's options; fails at once, with
    /// the exit status, when the process has exited.
    #[cfg(feature = "tokio")]
    pub async fn connect_async(&self) -> Result<crate::tokio::Qmp, Error> {
        self.connect_async_with(&self.options).await
    }

    /// [`Instance::connect_async`] with these options.
    #[cfg(feature = "tokio")]
    pub async fn connect_async_with(&self, options: &Options) -> Result<crate::tokio::Qmp, Error> {
        let endpoint = || Endpoint::Unix(self.socket.clone());
        self.retry_async(|| crate::tokio::Qmp::connect(endpoint(), options))
            .await
    }

    /// Connects the tokio guest agent client (for [`Launcher::guest_agent`]).
    #[cfg(feature = "tokio")]
    pub async fn connect_qga_async(&self) -> Result<crate::tokio::Qga, Error> {
        let endpoint = || Endpoint::Unix(self.socket.clone());
        self.retry_async(|| crate::tokio::Qga::connect(endpoint(), &self.options))
            .await
    }

    /// [`Instance::retry`] for the tokio clients.
    #[cfg(feature = "tokio")]
    async fn retry_async<T, F>(&self, mut connect: impl FnMut() -> F) -> Result<T, Error>
    where
        F: std::future::Future<Output = Result<T, Error>>,
    {
        let deadline = Instant::now() + self.start_timeout;
        loop {
            if let Some(e) = self.exited_error() {
                return Err(e);
            }
            match connect().await {
                Err(Error::Connect { source, .. })
                    if matches!(
                        source.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                    ) && Instant::now() < deadline =>
                {
                    ::tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(e) => return Err(self.exited_error().unwrap_or(e)),
                ok => return ok,
            }
        }
    }

    /// Connects a guest agent client (for [`Launcher::guest_agent`]).
    pub fn connect_qga(&self) -> Result<Qga, Error> {
        self.retry(|| Qga::connect(Endpoint::Unix(self.socket.clone()), &self.options))
    }

    /// The host end of the guest agent's port, a Unix socket in the private directory
    /// (for [`Launcher::guest`]; `None` otherwise). QEMU serves one client at a time:
    /// a second connection waits until the first closes.
    pub fn agent_socket_path(&self) -> Option<&Path> {
        self.agent.as_deref()
    }

    /// What the guest wrote to its serial console so far (for [`Launcher::guest`];
    /// empty otherwise): the kernel's messages and init's.
    pub fn console(&self) -> String {
        self.console
            .as_ref()
            .map(|p| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned())
            .unwrap_or_default()
    }

    /// Connects a guest agent client to the guest of [`Launcher::guest`], waiting for it
    /// to boot: [`Qga::connect_retrying`] within [`Launcher::boot_timeout`] (60 s by
    /// default). The port accepts connections at once, but stays silent until the agent
    /// runs inside the guest.
    ///
    /// Fails at once when QEMU has exited; a failure's message ends with the last lines
    /// of the guest's console.
    pub fn connect_agent(&self) -> Result<Qga, Error> {
        self.connect_agent_within(self.boot_timeout)
    }

    /// [`Instance::connect_agent`] with another deadline (e.g. short, after the guest
    /// has booted).
    pub fn connect_agent_within(&self, wait: Duration) -> Result<Qga, Error> {
        let agent = self.agent_endpoint()?;
        let alive = || !self.exited();
        Qga::connect_retrying_while(agent, &self.options, wait, &alive)
            .map_err(|e| self.agent_error(wait, e))
    }

    /// [`Instance::connect_agent`] for the tokio guest agent client.
    #[cfg(feature = "tokio")]
    pub async fn connect_agent_async(&self) -> Result<crate::tokio::Qga, Error> {
        self.connect_agent_within_async(self.boot_timeout).await
    }

    /// [`Instance::connect_agent_within`] for the tokio guest agent client.
    #[cfg(feature = "tokio")]
    pub async fn connect_agent_within_async(
        &self,
        wait: Duration,
    ) -> Result<crate::tokio::Qga, Error> {
        let agent = self.agent_endpoint()?;
        let alive = || !self.exited();
        crate::tokio::Qga::connect_retrying_while(agent, &self.options, wait, &alive)
            .await
            .map_err(|e| self.agent_error(wait, e))
    }

    /// The guest agent port's socket (an error for an instance without one).
    fn agent_endpoint(&self) -> Result<Endpoint, Error> {
        match &self.agent {
            Some(agent) => Ok(Endpoint::Unix(agent.clone())),
            None => Err(Error::Launch {
                program: self.program.binary_name().to_owned(),
                reason: "this instance has no guest agent port (start it with Launcher::guest)"
                    .to_owned(),
            }),
        }
    }

    /// What a failed wait for the guest agent reports: why, QEMU's stderr and the
    /// console's last lines.
    fn agent_error(&self, wait: Duration, e: Error) -> Error {
        let what = if self.exited() {
            format!("QEMU exited while the guest agent was awaited ({e})")
        } else {
            format!("the guest agent did not answer within {wait:?}: {e}")
        };
        Error::Launch {
            program: self.program.binary_name().to_owned(),
            reason: format!(
                "{what}; stderr: {}; console (last lines):\n{}",
                self.stderr().trim(),
                tail(&self.console(), 15)
            ),
        }
    }

    /// Whether the process has exited (without reaping it: a zombie counts).
    fn exited(&self) -> bool {
        match fs::read_to_string(format!("/proc/{}/stat", self.child.id())) {
            // The state follows the parenthesised command name.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => true,
        }
    }

    /// Retries while the socket exists but does not listen yet; fails at once, with
    /// the exit status, when the process has exited (before or during the attempt).
    fn retry<T>(&self, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
        let deadline = Instant::now() + self.start_timeout;
        loop {
            if let Some(e) = self.exited_error() {
                return Err(e);
            }
            match f() {
                Err(e) if self.exit_status().is_some() => {
                    let exited = self.exited_error().unwrap_or(e);
                    return Err(exited);
                }
                Err(Error::Connect { source, .. })
                    if matches!(
                        source.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                    ) && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                other => return other,
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
