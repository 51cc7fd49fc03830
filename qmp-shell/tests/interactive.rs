//! End-to-end tests of the interactive shell through a pseudo-terminal against live
//! QEMU 10.0.2: typing, Tab completion, events arriving while a line is being typed,
//! history across sessions, multi-line transactions, help, HMP and the guest agent.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `qmp` running on the slave side of a pseudo-terminal.
struct Pty {
    master: std::fs::File,
    /// Everything the program wrote, escape sequences included.
    raw: Arc<Mutex<Vec<u8>>>,
    /// How much of the screen text earlier expectations consumed.
    seen: usize,
    child: Child,
}

/// The screen text: escape sequences removed, carriage returns dropped.
fn strip(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // Parameters, then one final byte in @..~.
                    for d in chars.by_ref() {
                        if ('@'..='~').contains(&d) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' | '\x07' => {}
            _ => out.push(c),
        }
    }
    out
}

impl Pty {
    fn spawn(args: &[&str], home: &Path) -> Pty {
        let mut master = -1;
        let mut slave = -1;
        let ws = libc::winsize {
            ws_row: 40,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds into the given integers.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &ws,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: fresh fds from openpty, owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qmp"));
        cmd.args(args)
            .env("HOME", home)
            .env("QMP_HISTORY", home.join("history"))
            .env("TERM", "xterm")
            .env_remove("QMP_SCHEMA")
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: setsid and TIOCSCTTY in the child before exec; both are
            // async-signal-safe. The slave is the child's stdin (fd 0).
            unsafe {
                cmd.pre_exec(|| {
                    libc::setsid();
                    libc::ioctl(0, libc::TIOCSCTTY, 0);
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("start qmp on a pty");
        let master = std::fs::File::from(master);
        let raw = Arc::new(Mutex::new(Vec::new()));
        {
            let raw = raw.clone();
            let mut reader = master.try_clone().expect("dup master");
            let mut answer = master.try_clone().expect("dup master");
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let chunk = &buf[..n];
                    // Answer the editor's cursor-position query like a terminal.
                    if chunk.windows(4).any(|w| w == b"\x1b[6n") {
                        let _ = answer.write_all(b"\x1b[1;1R");
                    }
                    if let Ok(mut r) = raw.lock() {
                        r.extend_from_slice(chunk);
                    }
                }
            });
        }
        Pty {
            master,
            raw,
            seen: 0,
            child,
        }
    }

    fn screen(&self) -> String {
        strip(&self.raw.lock().expect("lock"))
    }

    /// Waits until `text` appears after what earlier expectations consumed.
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.screen();
            if let Some(at) = screen[self.seen.min(screen.len())..].find(text) {
                let start = self.seen;
                self.seen += at + text.len();
                return screen[start..self.seen].to_owned();
            }
            if Instant::now() > deadline {
                panic!(
                    "{text:?} not on the screen; after the last match it shows:\n{}",
                    &screen[self.seen.min(screen.len())..]
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).expect("type");
        self.master.flush().expect("flush");
        // Keys are read one burst at a time: let the editor catch up.
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Ends the session with Ctrl-D on an empty line; returns the exit code.
    fn quit(mut self) -> i32 {
        // Wait for the prompt so that Ctrl-D meets an empty line (under load the
        // previous command's output may still be on its way).
        self.expect_prompt();
        self.send("\x04");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                panic!("qmp did not exit on Ctrl-D; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the screen ends with an empty prompt.
    fn expect_prompt(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !["(QEMU) ", "(HMP) ", "(QGA) "]
            .iter()
            .any(|p| self.screen().ends_with(p))
        {
            if Instant::now() > deadline {
                panic!("no empty prompt; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn qemu_with_second_monitor() -> (common::Peer, std::path::PathBuf) {
    let dir = common::temp_dir("second");
    let second = dir.join("second.sock");
    let vm = common::qemu(&[
        "-qmp",
        &format!("unix:{},server=on,wait=off", second.display()),
    ]);
    (vm, second)
}

#[test]
fn completion_typing_and_events_while_typing() {
    let (vm, second) = qemu_with_second_monitor();
    let home = common::temp_dir("home");
    let mut t = Pty::spawn(&[vm.sock.to_str().expect("path")], &home);
    t.expect("Connected to QEMU 10.0.2");
    t.expect("(QEMU) ");

    // Command name: Tab extends to the common prefix, a second Tab lists.
    t.send("query-sta\t");
    t.expect("query-stat");
    t.send("\t");
    let listed = t.expect("query-status\n");
    assert!(listed.contains("query-stats-schemas"), "{listed}");
    t.send("us\r");
    t.expect("status   running");

    // Nested argument names and enum/bool values.
    t.send("blockdev-add driver=nul\t");
    t.expect("driver=null-");
    t.send("c\t node-name=d0 ca\t");
    t.expect("cache.");
    t.send("dir\t");
    t.expect("cache.direct=");
    t.send("t\t");
    t.expect("cache.direct=true");
    t.send("\r");
    t.expect("{}");

    // An event arriving while a line is half typed is printed above it, and the
    // line survives.
    t.send("query-stat");
    let r = common::qmp(&[second.to_str().expect("path"), "stop"]);
    assert_eq!(r.code, 0, "{r:?}");
    t.expect(" STOP");
    t.expect("(QEMU) query-stat");
    t.send("us\r");
    t.expect("status   paused");

    // Events caused by our own command come before its reply.
    t.send("cont\r");
    let shown = t.expect("{}");
    assert!(shown.contains(" RESUME"), "{shown}");

    // Validation: nothing sent, with a suggestion.
    t.send("device_del idd=x\r");
    t.expect("idd: unknown argument; did you mean 'id'?");
    t.expect("nothing sent");
    assert_eq!(t.quit(), 0);
    let _ = std::fs::remove_dir_all(home);
    let _ = std::fs::remove_dir_all(second.parent().expect("dir"));
}

#[test]
fn transaction_over_lines_help_and_history() {
    let vm = common::qemu(&[]);
    let home = common::temp_dir("home");
    let schema = common::shared_schema("qapi");
    let log = home.join("transcript");
    let args = [
        "--schema",
        schema.to_str().expect("path"),
        "-l",
        log.to_str().expect("path"),
        vm.sock.to_str().expect("path"),
    ];
    let mut t = Pty::spawn(&args, &home);
    t.expect("(QEMU) ");
    t.send("blockdev-add driver=null-co node-name=d\r");
    t.expect("{}");
    t.send("transaction(\r");
    t.expect("... ");
    t.send("block-dirty-bitmap-add node=d na\t");
    t.expect("name=");
    t.send("b1\r");
    t.expect("... ");
    t.send("block-dirty-bitmap-add node=d name=b2 persistent=false\r");
    t.send(")\r");
    t.expect("{}");
    t.send("query-named-block-nodes\r");
    t.expect("null-co");

    t.send("help block-dirty-bitmap-add\r");
    t.expect("block-dirty-bitmap-add");
    t.expect("Arguments:");
    t.expect("  granularity: uint32 (optional)");
    assert_eq!(t.quit(), 0);

    // The transcript went to the file; the socket is untouched (qmp-shell's `-l` bug).
    assert!(vm.sock.exists());
    let text = std::fs::read_to_string(&log).expect("transcript");
    assert!(
        text.contains("-> {\"execute\":\"transaction\",\"arguments\":{\"actions\":[{\"data\":{\"name\":\"b1\",\"node\":\"d\"},\"type\":\"block-dirty-bitmap-add\"}"),
        "{text}"
    );

    // History persists: Up recalls the previous session's last line.
    let mut t = Pty::spawn(&[vm.sock.to_str().expect("path")], &home);
    t.expect("(QEMU) ");
    t.send("\x1b[A");
    t.expect("help block-dirty-bitmap-add");
    t.send("\x03");
    assert_eq!(t.quit(), 0);
    let _ = std::fs::remove_dir_all(home);
}

/// A per-line `--timeout=` against a QEMU stopped mid-session: the command times
/// out, and once QEMU runs again the next command gets its own reply (the late one
/// is discarded, as qmp-shell's id-less requests could not).
#[test]
fn per_line_timeout_then_resync() {
    let vm = common::qemu(&[]);
    let home = common::temp_dir("home");
    let mut t = Pty::spawn(&[vm.sock.to_str().expect("path")], &home);
    t.expect("(QEMU) ");
    let pid = vm.child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    t.send("--timeout=1 query-name\r");
    t.expect("timed out");
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    t.send("query-status\r");
    t.expect("status   running");
    t.send("--oob query-status\r");
    t.expect("does not support OOB");
    assert_eq!(t.quit(), 0);
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn hmp_mode_without_cpu() {
    let vm = common::qemu(&[]);
    let home = common::temp_dir("home");
    let mut t = Pty::spawn(&["-H", vm.sock.to_str().expect("path")], &home);
    t.expect("(HMP) ");
    // Completion from HMP's own `help` and `help info`.
    t.send("info vers\t");
    t.expect("info version");
    t.send("\r");
    t.expect("10.0.2");
    t.send("info status\r");
    t.expect("VM status: running");
    assert_eq!(t.quit(), 0);
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn guest_agent_shell() {
    let ga = common::guest_agent();
    let home = common::temp_dir("home");
    let schema = common::shared_schema("qga");
    let args = [
        "--qga",
        "--schema",
        schema.to_str().expect("path"),
        ga.sock.to_str().expect("path"),
    ];
    let mut t = Pty::spawn(&args, &home);
    t.expect("(QGA) ");
    t.send("guest-p\t");
    t.expect("guest-ping");
    t.send("\r");
    t.expect("{}");
    t.send("guest-sync id=7\r");
    t.expect("7");
    assert_eq!(t.quit(), 0);
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn screen_text_strips_escapes() {
    assert_eq!(strip(b"\x1b[1G\x1b[0K(QEMU) a\x1b[7Gb\r\n"), "(QEMU) ab\n");
    let _ = AsRawFd::as_raw_fd(&std::io::stdin());
}
