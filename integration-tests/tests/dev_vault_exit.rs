//! A dev server never outlives its test process, however that process ends.
//!
//! Its own test binary (`harness = false`): it runs itself again as a child
//! that starts a server (`DevVault::shared()`, or `DevVault::start()`),
//! reports the server's address, pid and scratch directory, then ends in one
//! way: a panicking test (the libtest way: the panic is caught on the test's
//! thread and the process exits 101 without running static destructors), a
//! panic in `main` while holding its own server, `std::process::exit`,
//! SIGTERM, SIGINT or SIGKILL. After each, the port must be closed, the
//! server process gone and its scratch directory removed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use vault_secret::testing::DevVault;

/// The child's mode, when this process is the child.
const CHILD: &str = "DEV_VAULT_EXIT_CHILD";

/// (mode, signal the parent sends once the server is up)
const CASES: &[(&str, Option<&str>)] = &[
    ("shared-panicking-test", None),
    ("own-panic", None),
    ("shared-exit", None),
    ("shared-wait", Some("TERM")),
    ("shared-wait", Some("INT")),
    ("shared-wait", Some("KILL")),
];

fn main() {
    if let Ok(mode) = std::env::var(CHILD) {
        child(&mode);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("dev_vault_exit: test");
        return;
    }
    // Honour a name filter (`cargo test <filter>`) the way libtest would.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|f| "dev_vault_exit".contains(f.as_str()))
    {
        println!("dev_vault_exit: filtered out");
        return;
    }
    for (mode, signal) in CASES {
        let name = format!(
            "{mode}{}",
            signal.map(|s| format!(" + SIG{s}")).unwrap_or_default()
        );
        print!("test {name} ... ");
        std::io::stdout().flush().ok();
        parent(mode, *signal);
        println!("ok");
    }
    println!("test result: ok. {} passed", CASES.len());
}

/// What the child reports once its server is ready.
struct Started {
    addr: String,
    pid: u32,
    scratch: PathBuf,
}

fn parent(mode: &str, signal: Option<&str>) {
    let exe = std::env::current_exe().expect("this test binary");
    let mut child = Command::new(exe)
        .env(CHILD, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the child");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("child stdout"))
        .read_line(&mut line)
        .expect("read the child's report");
    let Some(started) = parse(&line) else {
        let output = child.wait_with_output().expect("child output");
        panic!(
            "{mode}: no server reported ({line:?}); stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    if signal.is_some() {
        // The child waits for the signal, so its server must be up now. (A
        // child that exits or panics on its own may already be gone: its
        // READY line, sent once the server answered, is the proof it ran.)
        assert!(
            proc_alive(started.pid),
            "{mode}: server pid {} not running",
            started.pid
        );
        assert!(
            std::net::TcpStream::connect(&started.addr).is_ok(),
            "{mode}: the server's port is closed while the child waits"
        );
    }
    if let Some(signal) = signal {
        let sent = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -s {signal} failed");
    }
    let output = child.wait_with_output().expect("wait for the child");
    check_exit(mode, signal, output.status, &output.stderr);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let port_open = std::net::TcpStream::connect(&started.addr).is_ok();
        let alive = proc_alive(started.pid);
        let scratch_left = started.scratch.exists();
        if !port_open && !alive && !scratch_left {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{mode} {signal:?}: 20 s after the test process ended: port {} open: {port_open}, \
             server pid {} alive: {alive}, scratch dir {} left: {scratch_left}",
            started.addr,
            started.pid,
            started.scratch.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check_exit(mode: &str, signal: Option<&str>, status: ExitStatus, stderr: &[u8]) {
    let stderr = String::from_utf8_lossy(stderr);
    match (mode, signal) {
        (_, Some(_)) => assert!(
            status.code().is_none(),
            "{mode}: want death by signal, got {status}; stderr:\n{stderr}"
        ),
        ("shared-exit", None) => assert_eq!(status.code(), Some(0), "{stderr}"),
        _ => {
            assert_eq!(
                status.code(),
                Some(101),
                "{mode}: {status}; stderr:\n{stderr}"
            );
            assert!(stderr.contains("a failing test"), "{stderr}");
        }
    }
}

fn parse(line: &str) -> Option<Started> {
    let mut words = line.strip_prefix("READY ")?.split_whitespace();
    Some(Started {
        addr: words.next()?.trim_start_matches("http://").to_owned(),
        pid: words.next()?.parse().ok()?,
        scratch: PathBuf::from(words.next()?),
    })
}

/// Whether `pid` is a live (not zombie) process.
fn proc_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3, after the parenthesised name, is the state.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn report(vault: &DevVault) {
    println!(
        "READY {} {} {}",
        vault.addr(),
        vault.pid().expect("a started server has a pid"),
        vault
            .scratch_dir()
            .map_or_else(|| Path::new("-").to_owned(), Path::to_owned)
            .display()
    );
    std::io::stdout().flush().expect("flush the report");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn child(mode: &str) {
    match mode {
        "shared-panicking-test" => {
            // As libtest runs a test: on its own thread, the panic caught.
            let test = std::thread::spawn(|| {
                runtime().block_on(async {
                    let vault = DevVault::shared().await.expect("a shared server");
                    report(&vault);
                    panic!("a failing test");
                })
            });
            assert!(test.join().is_err());
            std::process::exit(101);
        }
        "own-panic" => runtime().block_on(async {
            let vault = DevVault::start().await.expect("a server");
            report(&vault);
            panic!("a failing test holding its own server");
        }),
        "shared-exit" => runtime().block_on(async {
            let vault = DevVault::shared().await.expect("a shared server");
            report(&vault);
            std::process::exit(0);
        }),
        "shared-wait" => runtime().block_on(async {
            let vault = DevVault::shared().await.expect("a shared server");
            report(&vault);
            tokio::time::sleep(Duration::from_secs(120)).await;
            panic!("the parent did not stop this process");
        }),
        other => panic!("unknown child mode {other}"),
    }
}
