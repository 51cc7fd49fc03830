//! The demo behind `cargo xtask demo`: starts QEMU and the guest agent with the
//! crate's launcher and prints a readable transcript of a session: version and status,
//! stop/cont with their events, a disk hot-plug and unplug, a dirty-bitmap backup, an
//! HMP command, and guest agent commands.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use qmp_types::client::{find_binary, Error, Event, EventFilter, Launcher, Qga, Qmp};
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

fn show_event(e: &Event) {
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
    let ret = qmp.execute_raw(name, args.map(raw).as_deref())?;
    show_reply(ret.get());
    while let Some(e) = qmp.poll_event()? {
        show_event(&e);
    }
    Ok(serde_json::from_str(ret.get())?)
}

/// Runs a command and waits for the event it causes (filter armed before sending).
fn exec_and_wait(qmp: &mut Qmp, name: &str, args: Value, filter: &EventFilter) -> Result<Event> {
    show_request(name, Some(&args));
    let (ret, ev) =
        qmp.execute_raw_and_wait(name, Some(&raw(args)), filter, Duration::from_secs(30))?;
    show_reply(ret.get());
    let mut events = qmp.drain_events();
    events.push(ev.clone());
    events.sort_by_key(Event::sequence);
    for e in &events {
        show_event(e);
    }
    Ok(ev)
}

fn section(title: &str) {
    println!("\n== {title}");
}

fn run() -> Result {
    let started = Instant::now();
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

    section("version and status");
    exec(&mut qmp, "query-version", None)?;
    exec(&mut qmp, "query-status", None)?;

    section("stop / cont with their events");
    exec(&mut qmp, "cont", None)?;
    exec(&mut qmp, "stop", None)?;
    exec(&mut qmp, "query-status", None)?;

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
    exec(
        &mut qmp,
        "blockdev-add",
        Some(json!({"driver": "qcow2", "node-name": "disk0",
                    "file": {"driver": "file", "filename": disk}})),
    )?;
    exec(
        &mut qmp,
        "device_add",
        Some(json!({"driver": "scsi-hd", "id": "sd0", "drive": "disk0", "bus": "scsi0.0"})),
    )?;
    let blocks = exec(&mut qmp, "query-block", None)?;
    for b in blocks.as_array().into_iter().flatten() {
        println!(
            "     device {} qdev {} node {} ({} bytes)",
            b["device"],
            b["qdev"],
            b["inserted"]["node-name"],
            b["inserted"]["image"]["virtual-size"]
        );
    }

    section("unplug the disk (waits for DEVICE_DELETED)");
    let deleted =
        EventFilter::name("DEVICE_DELETED").matching(|e| e.data_value()["device"] == "sd0");
    exec_and_wait(&mut qmp, "device_del", json!({"id": "sd0"}), &deleted)?;

    section("dirty-bitmap backup of the unplugged node");
    exec(
        &mut qmp,
        "transaction",
        Some(json!({"actions": [
            {"type": "block-dirty-bitmap-add", "data": {"node": "disk0", "name": "bitmap0", "persistent": false}}
        ]})),
    )?;
    // Dirty 1 MiB through HMP's qemu-io so the bitmap has something to back up.
    println!("  -> hmp \"qemu-io disk0 'write -P 0x5a 0 1M'\"");
    println!(
        "  <- {:?}",
        qmp.hmp("qemu-io disk0 \"write -P 0x5a 0 1M\"")?
    );
    exec(
        &mut qmp,
        "blockdev-add",
        Some(json!({"driver": "qcow2", "node-name": "backup0",
                    "file": {"driver": "file", "filename": backup}})),
    )?;
    let done =
        EventFilter::name("BLOCK_JOB_COMPLETED").matching(|e| e.data_value()["device"] == "job0");
    let ev = exec_and_wait(
        &mut qmp,
        "blockdev-backup",
        json!({"job-id": "job0", "device": "disk0", "target": "backup0",
               "sync": "bitmap", "bitmap": "bitmap0", "bitmap-mode": "on-success"}),
        &done,
    )?;
    let d = ev.data_value();
    println!(
        "     backup job {} copied {} of {} bytes",
        d["device"], d["offset"], d["len"]
    );
    exec(&mut qmp, "query-block-jobs", None)?;
    exec(
        &mut qmp,
        "blockdev-del",
        Some(json!({"node-name": "backup0"})),
    )?;
    exec(
        &mut qmp,
        "blockdev-del",
        Some(json!({"node-name": "disk0"})),
    )?;

    section("HMP");
    println!("  -> hmp \"info version\"");
    println!("  <- {:?}", qmp.hmp("info version")?);
    println!("  -> hmp \"info status\"");
    println!("  <- {:?}", qmp.hmp("info status")?);

    section("errors keep QEMU's class");
    show_request("device_del", Some(&json!({"id": "nope"})));
    match qmp.execute_raw("device_del", Some(&raw(json!({"id": "nope"})))) {
        Err(Error::Qmp(e)) => println!("  <- error class {} desc {:?}", e.class, e.desc),
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
    qga_exec(&mut qga, "guest-ping", None)?;
    let info = qga_exec(&mut qga, "guest-info", None)?;
    println!(
        "     agent {} with {} commands",
        info["version"],
        info["supported_commands"].as_array().map_or(0, Vec::len)
    );
    let pid = qga_exec(
        &mut qga,
        "guest-exec",
        Some(json!({"path": "/bin/uname", "arg": ["-sr"], "capture-output": true})),
    )?;
    let status = loop {
        let st = qga_exec(
            &mut qga,
            "guest-exec-status",
            Some(json!({"pid": pid["pid"]})),
        )?;
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
    println!("\ndone in {:.2?}", started.elapsed());
    Ok(())
}

fn qga_exec(qga: &mut Qga, name: &str, args: Option<Value>) -> Result<Value> {
    show_request(name, args.as_ref());
    let ret = qga.execute_raw(name, args.map(raw).as_deref())?;
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
