//! The demo behind `cargo xtask demo`: starts QEMU and the guest agent with the
//! crate's launcher and prints a readable transcript of a session with typed commands:
//! version and status, stop/cont with their events, a disk hot-plug and unplug, a
//! dirty-bitmap backup, an HMP command, and guest agent commands (typed with the `qga`
//! feature, which `cargo xtask demo` enables; by name with JSON otherwise).
//!
//! With the `qga` feature it also boots the tiny Linux guest of `cargo xtask guest build`
//! (from `$QMP_TYPES_GUEST_DIR`, which `cargo xtask demo` sets, else `<target dir>/guest`),
//! hot-plugs a disk into the running kernel, shows what the guest sees through its agent,
//! unplugs the disk with the guest's cooperation and shuts the guest down. The guest boots
//! while the rest of the demo runs.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use qmp_types::client::{find_binary, Error, EventFilter, Launcher, Qga, Qmp, RawEvent, Request};
use qmp_types::qmp::{self, commands as c};
use qmp_types::Command;
use serde_json::value::RawValue;
use serde_json::{json, Value};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn raw(v: Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(&v).expect("JSON value")
}

/// Prints a request line: the command and its arguments.
fn show_request(name: &str, args: Option<&Value>) {
    match args {
        Some(a) => println!("  -> {name} {a}"),
        None => println!("  -> {name}"),
    }
}

/// Prints a reply, shortened for long ones.
fn show_reply(ret: &str) {
    let line = if ret.len() > 160 {
        format!("{}... ({} bytes)", &ret[..160], ret.len())
    } else {
        ret.to_owned()
    };
    println!("  <- {line}");
}

fn show_event(e: &RawEvent) {
    let ts = e.timestamp();
    match e.data() {
        Some(d) => println!(
            "  !! event {} {d} (t={}.{:06})",
            e.name(),
            ts.seconds,
            ts.microseconds
        ),
        None => println!(
            "  !! event {} (t={}.{:06})",
            e.name(),
            ts.seconds,
            ts.microseconds
        ),
    }
}

/// Runs a command by name and prints it, its reply and the events that came with it.
fn exec(qmp: &mut Qmp, name: &str, args: Option<Value>) -> Result<Value> {
    show_request(name, args.as_ref());
    let ret = qmp.execute(match args.map(raw) {
        Some(a) => Request::raw(name, &a),
        None => Request::name(name),
    })?;
    show_reply(ret.get());
    while let Some(e) = qmp.poll_event()? {
        show_event(&e);
    }
    Ok(serde_json::from_str(ret.get())?)
}

fn section(title: &str) {
    println!("\n== {title}");
}

/// Executes a typed command, printing its wire name and arguments, the reply as
/// `show` renders it, and the events that came with it.
fn typed<C, R>(qmp: &mut Qmp, cmd: &C, show: impl FnOnce(&C::Returns) -> R) -> Result<C::Returns>
where
    C: Command + Sync,
    R: std::fmt::Display,
{
    show_typed_request(cmd)?;
    let ret = qmp.execute(cmd)?;
    println!("  <- {}", show(&ret));
    while let Some(e) = qmp.poll_event()? {
        show_event(&e);
    }
    Ok(ret)
}

/// Executes a typed command and waits for the event it causes (the filter is armed
/// before the command is written); prints everything in arrival order.
fn typed_and_wait<C>(qmp: &mut Qmp, cmd: &C, filter: EventFilter) -> Result<qmp::Event>
where
    C: Command + Sync,
{
    show_typed_request(cmd)?;
    let (_, ev) = qmp.execute(
        Request::new(cmd)
            .timeout(Duration::from_secs(30))
            .wait_for(filter),
    )?;
    println!("  <- {{}}");
    let mut events = qmp.drain_events();
    events.push(ev.clone());
    events.sort_by_key(RawEvent::sequence);
    for e in &events {
        show_event(e);
    }
    Ok(ev.decode::<qmp::Event>()?)
}

/// Prints a typed command as it goes on the wire (its name and compact arguments).
fn show_typed_request<C: Command>(cmd: &C) -> Result {
    let mut args = Vec::new();
    cmd.write_arguments(&mut args)?;
    if args.is_empty() || args == b"{}" {
        println!("  -> {}", C::NAME);
    } else {
        println!("  -> {} {}", C::NAME, String::from_utf8_lossy(&args));
    }
    Ok(())
}

fn empty(_: &()) -> &'static str {
    "{}"
}

fn run() -> Result {
    let started = Instant::now();
    // Boots under TCG while the sections before it run.
    let guest = start_guest()?;
    section("QEMU on demand");
    let vm = Launcher::qemu()
        .args([
            "-machine",
            "q35",
            "-S",
            "-device",
            "virtio-scsi-pci,id=scsi0",
        ])
        .spawn()?;
    let mut qmp = vm.connect()?;
    let g = qmp.greeting().ok_or("no greeting")?;
    println!(
        "  started qemu-system-x86_64 (pid {}), monitor {}",
        vm.pid(),
        vm.socket_path().display()
    );
    println!(
        "  greeting: QEMU {} ({}), capabilities {:?}, oob enabled: {}",
        g.version,
        g.package,
        g.capabilities,
        qmp.oob_enabled()
    );

    section("version and status (typed)");
    typed(&mut qmp, &c::QueryVersion, |v| {
        format!(
            "QEMU {}.{}.{}, package {:?}",
            v.qemu.major, v.qemu.minor, v.qemu.micro, v.package
        )
    })?;
    let status = |s: &qmp::StatusInfo| format!("status {}, running {}", s.status, s.running);
    typed(&mut qmp, &c::QueryStatus, status)?;

    section("stop / cont with their events");
    typed(&mut qmp, &c::Cont, empty)?;
    typed(&mut qmp, &c::Stop, empty)?;
    typed(&mut qmp, &c::QueryStatus, status)?;

    section("hot-plug a disk");
    let disk = vm.dir().join("disk.qcow2");
    let backup = vm.dir().join("backup.qcow2");
    let qemu_img = find_binary("qemu-img")?;
    for img in [&disk, &backup] {
        println!("  $ qemu-img create -f qcow2 {} 64M", img.display());
        let out = std::process::Command::new(&qemu_img)
            .args(["create", "-q", "-f", "qcow2"])
            .arg(img)
            .arg("64M")
            .output()?;
        if !out.status.success() {
            return Err(
                format!("qemu-img failed: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
    }
    // BlockdevOptions is a large union: built from JSON, checked against the schema
    // by its typed deserializer before anything is sent.
    let qcow2 = |node: &str, file: &std::path::Path| -> Result<c::BlockdevAdd> {
        Ok(c::BlockdevAdd(serde_json::from_value(json!({
            "driver": "qcow2", "node-name": node,
            "file": {"driver": "file", "filename": file}
        }))?))
    };
    typed(&mut qmp, &qcow2("disk0", &disk)?, empty)?;
    // device_add takes free-form driver properties (schema `gen: false`): raw JSON.
    exec(
        &mut qmp,
        "device_add",
        Some(json!({"driver": "scsi-hd", "id": "sd0", "drive": "disk0", "bus": "scsi0.0"})),
    )?;
    typed(&mut qmp, &c::QueryBlock, |blocks| {
        blocks
            .iter()
            .map(|b| {
                let ins = b.inserted.as_ref();
                format!(
                    "qdev {} node {} ({} bytes)",
                    b.qdev.as_deref().unwrap_or("-"),
                    ins.and_then(|i| i.node_name.as_deref()).unwrap_or("-"),
                    ins.map_or(0, |i| i.image.virtual_size)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    })?;

    section("unplug the disk (waits for DEVICE_DELETED)");
    let deleted = EventFilter::name("DEVICE_DELETED").matching(|e: &RawEvent| {
        e.decode_typed::<qmp::events::DeviceDeleted>()
            .is_ok_and(|d| d.device.as_deref() == Some("sd0"))
    });
    typed_and_wait(&mut qmp, &c::DeviceDel::new("sd0"), deleted)?;

    section("dirty-bitmap backup of the unplugged node");
    let add_bitmap = qmp::TransactionAction {
        r#type: qmp::TransactionActionBranch::BlockDirtyBitmapAdd(
            qmp::BlockDirtyBitmapAddWrapper {
                data: qmp::BlockDirtyBitmapAdd {
                    node: "disk0".into(),
                    name: "bitmap0".into(),
                    granularity: None,
                    persistent: Some(false),
                    disabled: None,
                },
            },
        ),
    };
    typed(
        &mut qmp,
        &c::Transaction {
            actions: vec![add_bitmap],
            properties: None,
        },
        empty,
    )?;
    // Dirty 1 MiB through HMP's qemu-io so the bitmap has something to back up.
    typed(
        &mut qmp,
        &c::HumanMonitorCommand {
            command_line: "qemu-io disk0 \"write -P 0x5a 0 1M\"".into(),
            cpu_index: None,
        },
        |out| format!("{out:?}"),
    )?;
    typed(&mut qmp, &qcow2("backup0", &backup)?, empty)?;
    let done = EventFilter::name("BLOCK_JOB_COMPLETED").matching(|e: &RawEvent| {
        e.decode_typed::<qmp::events::BlockJobCompleted>()
            .is_ok_and(|j| j.device == "job0")
    });
    let backup_cmd = c::BlockdevBackup(qmp::BlockdevBackup {
        job_id: Some("job0".into()),
        device: "disk0".into(),
        target: "backup0".into(),
        sync: qmp::MirrorSyncMode::Bitmap,
        bitmap: Some("bitmap0".into()),
        bitmap_mode: Some(qmp::BitmapSyncMode::OnSuccess),
        speed: None,
        compress: None,
        on_source_error: None,
        on_target_error: None,
        auto_finalize: None,
        auto_dismiss: None,
        filter_node_name: None,
        discard_source: None,
        x_perf: None,
    });
    if let qmp::Event::BlockJobCompleted(j, _) = typed_and_wait(&mut qmp, &backup_cmd, done)? {
        println!(
            "     backup job {} copied {} of {} bytes",
            j.device, j.offset, j.len
        );
    }
    typed(&mut qmp, &c::QueryBlockJobs, |jobs| {
        format!("{} jobs", jobs.len())
    })?;
    typed(
        &mut qmp,
        &c::BlockdevDel {
            node_name: "backup0".into(),
        },
        empty,
    )?;
    typed(
        &mut qmp,
        &c::BlockdevDel {
            node_name: "disk0".into(),
        },
        empty,
    )?;

    section("HMP");
    println!("  -> hmp \"info version\"");
    println!("  <- {:?}", qmp.hmp("info version")?);
    println!("  -> hmp \"info status\"");
    println!("  <- {:?}", qmp.hmp("info status")?);

    section("errors keep QEMU's class");
    println!("  -> device_del {{\"id\":\"nope\"}}");
    match qmp.execute(&c::DeviceDel::new("nope")) {
        Err(Error::Qmp(e)) => println!(
            "  <- error class {} desc {:?} (command {})",
            e.class, e.desc, e.command
        ),
        other => return Err(format!("expected an error, got {other:?}").into()),
    }
    drop(qmp);
    drop(vm);

    section("guest agent (qemu-ga on the host)");
    let ga = Launcher::guest_agent().spawn()?;
    let mut qga = ga.connect_qga()?;
    println!(
        "  started qemu-ga (pid {}), socket {}, synchronised with 0xFF + guest-sync-delimited",
        ga.pid(),
        ga.socket_path().display()
    );
    guest_agent(&mut qga)?;
    drop(qga);
    drop(ga);
    linux_guest(guest)?;
    println!("\ndone in {:.2?}", started.elapsed());
    Ok(())
}

/// Where `cargo xtask guest build` put the guest: `$QMP_TYPES_GUEST_DIR`, else
/// `<target dir>/guest` by cargo's rule.
#[cfg(feature = "qga")]
fn guest_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("QMP_TYPES_GUEST_DIR") {
        return dir.into();
    }
    let workspace = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir).join("guest"),
        _ => workspace.join("target/guest"),
    }
}

/// A booting guest and when it was started.
#[cfg(feature = "qga")]
type Booting = (qmp_types::client::Instance, Instant);
/// Without the `qga` feature there is no guest part.
#[cfg(not(feature = "qga"))]
struct Booting;

/// Starts the Linux guest (it boots in the background).
#[cfg(feature = "qga")]
fn start_guest() -> Result<Booting> {
    let dir = guest_dir();
    let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initrd.gz"));
    if !kernel.is_file() || !initrd.is_file() {
        return Err(format!(
            "no test guest in {}: run `cargo xtask prepare` (or `cargo xtask guest build`)",
            dir.display()
        )
        .into());
    }
    Ok((Launcher::guest(kernel, initrd).spawn()?, Instant::now()))
}

#[cfg(not(feature = "qga"))]
fn start_guest() -> Result<Booting> {
    Ok(Booting)
}

/// The Linux guest part: the agent inside, a disk hot-plugged into the running kernel
/// and unplugged with the guest's cooperation, and a shutdown from inside.
#[cfg(feature = "qga")]
fn linux_guest((vm, booted): Booting) -> Result {
    use qmp_types::qga::commands as g;
    section("a Linux guest: Debian's cloud kernel, busybox and qemu-ga in an initrd");
    let mut qmp = vm.connect()?;
    println!(
        "  booting qemu-system-x86_64 -machine q35 -kernel ... (pid {}) with a pcie-root-port rp1",
        vm.pid()
    );
    let mut qga = vm.connect_agent()?;
    println!(
        "  agent in the guest answered {:.1?} after boot started (0xFF + guest-sync-delimited re-sent every second)",
        booted.elapsed()
    );
    show_typed_request(&g::GuestGetOsinfo)?;
    let os = qga.execute(&g::GuestGetOsinfo)?;
    println!(
        "  <- {}, kernel {}",
        os.pretty_name.as_deref().unwrap_or("-"),
        os.kernel_release.as_deref().unwrap_or("-")
    );
    let block_devices =
        "cd /sys/block; ls | while read d; do echo \"$d, $(cat $d/size) sectors\"; done";
    println!(
        "     guest's /sys/block before: {:?}",
        guest_sh(&mut qga, block_devices)?.trim()
    );

    typed(
        &mut qmp,
        &c::BlockdevAdd(serde_json::from_value(json!({
            "driver": "null-co", "node-name": "n1", "size": 1048576
        }))?),
        empty,
    )?;
    exec(
        &mut qmp,
        "device_add",
        Some(json!({"driver": "virtio-blk-pci", "drive": "n1", "id": "vb1", "bus": "rp1"})),
    )?;
    let plugged = Instant::now();
    let seen = loop {
        let out = guest_sh(&mut qga, block_devices)?;
        if out.contains("vda") || plugged.elapsed() > Duration::from_secs(20) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "     the guest sees, {:.0?} later (guest-exec sh -c ...): {}",
        plugged.elapsed(),
        none_if_empty(&seen)
    );
    let log = guest_sh(
        &mut qga,
        "dmesg | grep -E 'pciehp|acpiphp|virtio_blk' | tail -4",
    )?;
    for line in log.lines() {
        println!("     guest dmesg: {line}");
    }

    section("unplug it: the guest ejects the device, then QEMU reports DEVICE_DELETED");
    let deleted = EventFilter::name("DEVICE_DELETED").matching(|e: &RawEvent| {
        e.decode_typed::<qmp::events::DeviceDeleted>()
            .is_ok_and(|d| d.device.as_deref() == Some("vb1"))
    });
    let unplug = Instant::now();
    typed_and_wait(&mut qmp, &c::DeviceDel { id: "vb1".into() }, deleted)?;
    println!("     DEVICE_DELETED after {:.0?}", unplug.elapsed());
    println!(
        "     guest's /sys/block after: {:?}",
        guest_sh(&mut qga, block_devices)?.trim()
    );
    typed(
        &mut qmp,
        &c::BlockdevDel {
            node_name: "n1".into(),
        },
        empty,
    )?;

    section("shut down from inside (guest-shutdown, then QMP's SHUTDOWN event)");
    let shutdown = g::GuestShutdown { mode: None };
    show_typed_request(&shutdown)?;
    // No reply on success; the powered-off guest never answers the client's sync.
    let _ = qga.execute(Request::new(&shutdown).timeout(Duration::from_secs(3)));
    let event = qmp.wait_event(&EventFilter::name("SHUTDOWN"), Duration::from_secs(30))?;
    show_event(&event);
    Ok(())
}

#[cfg(not(feature = "qga"))]
fn linux_guest(_: Booting) -> Result {
    section("a Linux guest (needs the `qga` feature, which `cargo xtask demo` enables)");
    Ok(())
}

/// `text` trimmed, or "(none)".
#[cfg(feature = "qga")]
fn none_if_empty(text: &str) -> &str {
    match text.trim() {
        "" => "(none)",
        t => t,
    }
}

/// Runs `script` with the guest's `sh -c` through guest-exec; returns its output.
#[cfg(feature = "qga")]
fn guest_sh(qga: &mut Qga, script: &str) -> Result<String> {
    use qmp_types::qga::commands as g;
    let pid = qga
        .execute(&g::GuestExec {
            path: "/bin/sh".into(),
            arg: Some(vec!["-c".into(), script.into()]),
            env: None,
            input_data: None,
            capture_output: Some(qmp_types::qga::GuestExecCaptureOutput::Flag(true)),
        })?
        .pid;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = qga.execute(&g::GuestExecStatus { pid })?;
        if st.exited {
            let out = st
                .out_data
                .as_deref()
                .map(base64_decode)
                .unwrap_or_default();
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        if Instant::now() > deadline {
            return Err(format!("guest: {script:?} did not finish").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The guest agent part, with the typed QGA API (feature `qga`).
#[cfg(feature = "qga")]
fn guest_agent(qga: &mut Qga) -> Result {
    use qmp_types::qga::commands as g;
    println!("  -> guest-ping");
    qga.execute(&g::GuestPing)?;
    println!("  <- {{}}");
    println!("  -> guest-info");
    let info = qga.execute(&g::GuestInfo)?;
    println!(
        "  <- agent {} with {} commands",
        info.version,
        info.supported_commands.len()
    );
    let exec = g::GuestExec {
        path: "/bin/uname".into(),
        arg: Some(vec!["-sr".into()]),
        env: None,
        input_data: None,
        capture_output: Some(qmp_types::qga::GuestExecCaptureOutput::Flag(true)),
    };
    show_typed_request(&exec)?;
    let pid = qga.execute(&exec)?.pid;
    println!("  <- pid {pid}");
    let status = loop {
        println!("  -> guest-exec-status {{\"pid\":{pid}}}");
        let st = qga.execute(&g::GuestExecStatus { pid })?;
        println!("  <- exited {}", st.exited);
        if st.exited {
            break st;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = status
        .out_data
        .as_deref()
        .map(base64_decode)
        .unwrap_or_default();
    println!(
        "     exit code {:?}, output {:?}",
        status.exitcode,
        String::from_utf8_lossy(&out)
    );
    Ok(())
}

/// The guest agent part by name with JSON (without the `qga` feature).
#[cfg(not(feature = "qga"))]
fn guest_agent(qga: &mut Qga) -> Result {
    qga_exec(qga, "guest-ping", None)?;
    let info = qga_exec(qga, "guest-info", None)?;
    println!(
        "     agent {} with {} commands",
        info["version"],
        info["supported_commands"].as_array().map_or(0, Vec::len)
    );
    let pid = qga_exec(
        qga,
        "guest-exec",
        Some(json!({"path": "/bin/uname", "arg": ["-sr"], "capture-output": true})),
    )?;
    let status = loop {
        let st = qga_exec(qga, "guest-exec-status", Some(json!({"pid": pid["pid"]})))?;
        if st["exited"] == true {
            break st;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = status["out-data"]
        .as_str()
        .map(base64_decode)
        .unwrap_or_default();
    println!(
        "     exit code {}, output {:?}",
        status["exitcode"],
        String::from_utf8_lossy(&out)
    );
    Ok(())
}

#[cfg(not(feature = "qga"))]
fn qga_exec(qga: &mut Qga, name: &str, args: Option<Value>) -> Result<Value> {
    show_request(name, args.as_ref());
    let ret = qga.execute(match args.map(raw) {
        Some(a) => Request::raw(name, &a),
        None => Request::name(name),
    })?;
    show_reply(ret.get());
    Ok(serde_json::from_str(ret.get())?)
}

/// Decodes standard base64 (guest-exec output); invalid characters are skipped.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
