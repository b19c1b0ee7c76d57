//! What `vault-secret exec`'s supervision costs, against a real OpenBao dev
//! server:
//!
//! - `--mask` throughput: 100 MB of a command's output (`cat` of a file)
//!   through `exec --mask` with two secrets to hide, against the same
//!   output unmasked through `exec` (the target: at least 0.8): `exec
//!   --mask` whose one secret is too short to hide, so `exec` relays the
//!   output through its pipes as `--mask` does and scans nothing. For
//!   information, two more baselines: a second `cat` as the relay (`exec
//!   -- sh -c 'cat FILE | cat'`), and no relay at all (`exec -- cat`, which
//!   hands its stdout to `cat`). Against the last, masking adds a hop, two
//!   more copies of every byte, and a third process on the machine's
//!   cores; on two cores that alone costs about a third of the throughput.
//!   Every run writes to a pipe of the same size (1 MiB, what `exec
//!   --mask` makes its own stdout pipe), so the figures compare the work,
//!   not the buffer. Paired ABBA rounds; the median of the per-round
//!   throughput ratios.
//! - `--watch` requests: two secrets on two paths watched every second for
//!   a few seconds; the requests under their mount counted in the server's
//!   audit log, per path and interval. Target: at most 1.
//!
//! `cargo bench -p integration-tests --bench exec` prints the figures and
//! exits 1 when a target is missed.

// A benchmark stops at the first failure, like a test.
#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use vault_secret::KvVersion;
use vault_secret::testing::DevVault;

#[path = "../tests/it/cli_binary.rs"]
#[allow(dead_code, unreachable_pub)]
mod cli_binary;

const SIZE: usize = 100 * 1024 * 1024;
const ROUNDS: usize = 5;

/// The size of the pipe every run writes its output to: `exec --mask`
/// grows its own stdout pipe to this (`mask::CHUNK`), so the unmasked runs,
/// whose `cat` writes straight to it, get the same.
const PIPE_SIZE: usize = 1024 * 1024;

/// Runs `command`, reads all its stdout, and gives the time it took.
fn drained(mut command: Command) -> Duration {
    let started = Instant::now();
    let (mut out, write) = std::io::pipe().unwrap();
    rustix::pipe::fcntl_setpipe_size(&out, PIPE_SIZE).unwrap();
    let mut child = command
        .stdout(write)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Our copy of the write end is gone with `command`: the read ends when
    // the command's output does.
    drop(command);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(total, SIZE);
    started.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let binary = cli_binary::binary();
    let vault = DevVault::start().await.unwrap();
    let token = vault.root_token();
    let mount = vault.kv_mount(KvVersion::V2).await;
    let (a, b, short) = (
        format!("{mount}/a"),
        format!("{mount}/b"),
        format!("{mount}/short"),
    );
    vault
        .kv_put(&a, json!({"value": "a-secret-value-not-in-the-output"}))
        .await;
    vault
        .kv_put(&b, json!({"value": "another-secret-value"}))
        .await;
    // Shorter than the 4 bytes `--mask` hides.
    vault.kv_put(&short, json!({"value": "abc"})).await;

    // ----- --mask throughput ----------------------------------------------
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("output");
    let line = b"2026-12-04T22:00:00Z INFO request served path=/api/items status=200 ms=3\n";
    let data: Vec<u8> = line.iter().copied().cycle().take(SIZE).collect();
    std::fs::write(&file, &data).unwrap();
    drop(data);
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        /// `exec -- cat`: `cat` writes straight to our pipe.
        HandedOver,
        /// `exec -- sh -c 'cat FILE | cat'`: a second `cat` relays it.
        PipeHop,
        /// `exec --mask` whose only secret is too short to mask: `exec`
        /// relays the output through its pipes and scans nothing.
        Relayed,
        /// `exec --mask` with two secrets, 14 patterns in all their forms.
        Masked,
    }
    let secrets = |mode: Mode| {
        let masked = [format!("A={a}#value"), format!("B={b}#value")];
        let pairs = if mode == Mode::Relayed {
            vec![format!("C={short}#value")]
        } else {
            masked.to_vec()
        };
        pairs.into_iter().flat_map(|p| ["--secret".to_owned(), p])
    };
    let run = |mode: Mode| {
        let mut c = vault.command(binary, &token);
        c.arg("exec");
        if matches!(mode, Mode::Masked | Mode::Relayed) {
            c.arg("--mask");
        }
        c.args(secrets(mode)).arg("--");
        if mode == Mode::PipeHop {
            c.args(["sh", "-c", "cat \"$1\" | cat", "sh"]);
        } else {
            c.arg("cat");
        }
        c.arg(&file);
        drained(c)
    };
    for mode in [Mode::HandedOver, Mode::PipeHop, Mode::Relayed, Mode::Masked] {
        run(mode);
    }
    let mb = SIZE as f64 / 1e6;
    println!("exec --mask on 100 MB of output, {ROUNDS} ABBA rounds per baseline:");
    let mut mask_ok = true;
    for (baseline, name) in [
        (Mode::Relayed, "exec --mask, nothing to mask (relay)"),
        (Mode::PipeHop, "exec -- sh -c 'cat FILE | cat'"),
        (Mode::HandedOver, "exec -- cat (handed over)"),
    ] {
        let mut ratios = Vec::with_capacity(ROUNDS);
        let (mut plain, mut masked) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let p1 = run(baseline);
            let m1 = run(Mode::Masked);
            let m2 = run(Mode::Masked);
            let p2 = run(baseline);
            plain.push((p1 + p2).as_secs_f64() / 2.0);
            masked.push((m1 + m2).as_secs_f64() / 2.0);
            // Throughput ratio: plain time over masked time.
            ratios.push((p1 + p2).as_secs_f64() / (m1 + m2).as_secs_f64());
        }
        let (plain, masked, ratio) = (mb / median(plain), mb / median(masked), median(ratios));
        println!("  {name:<38} median {plain:>8.1} MB/s");
        println!("  {:<38} median {masked:>8.1} MB/s", "exec --mask -- cat");
        if baseline == Mode::Relayed {
            mask_ok = ratio >= 0.8;
            println!(
                "{} masked / relayed unmasked through exec, paired median {ratio:.3} (target >= 0.8)",
                if mask_ok { "[ ok ]" } else { "[MISS]" }
            );
        } else {
            println!("[info] masked / {name}, paired median {ratio:.3}");
        }
    }

    // ----- --watch requests per interval ----------------------------------
    let audit = vault.audit_requests().await;
    let mut c = vault.command(binary, &token);
    c.args(["exec", "--watch", "--watch-interval", "1s"])
        .args([
            "--secret",
            &format!("A={a}#value"),
            "--secret",
            &format!("B={b}#value"),
        ])
        .args(["--", "sleep", "30"])
        .stdout(Stdio::null());
    let mut child = c.spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mark = audit.mark().await;
    let watched = Duration::from_secs(6);
    tokio::time::sleep(watched).await;
    let requests = audit.count_since(&mark, &format!("{mount}/")).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let per = requests as f64 / (2.0 * watched.as_secs_f64());
    let watch_ok = per <= 1.0;
    println!("exec --watch --watch-interval 1s, 2 paths, {watched:?}:");
    println!("  {requests} requests under the mount in the audit log");
    println!(
        "{} requests per watched path per interval {per:.2} (target <= 1)",
        if watch_ok { "[ ok ]" } else { "[MISS]" }
    );
    drop(vault);
    if !(mask_ok && watch_ok) {
        std::process::exit(1);
    }
}
