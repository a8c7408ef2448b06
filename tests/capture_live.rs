//! `flowkeep capture` on the loopback interface: real packets through libpcap, a real SIGINT,
//! and the flows read back. Needs root (or CAP_NET_RAW): without it, skipped saying so, or a
//! failure under CI.

mod common;

use common::{is_root, skip_or_fail, BIN};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};

#[test]
fn live_capture_on_loopback_stores_flows_and_stops_cleanly_on_sigint() {
    if !is_root() {
        skip_or_fail("live capture needs root (CI runs as root)");
        return;
    }
    // Capture drops root to `nobody` (its default --user) once the interface is open.
    let store = tempfile::tempdir().unwrap();
    let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let nobody: u32 = String::from_utf8_lossy(&nobody.stdout)
        .trim()
        .parse()
        .unwrap();
    std::os::unix::fs::chown(store.path(), Some(nobody), None).unwrap();
    let udp_rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp_rx.local_addr().unwrap().port();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = listener.local_addr().unwrap().port();

    let mut child = Command::new(BIN)
        .args(["capture", "--interface", "lo", "--store"])
        .arg(store.path())
        .args([
            "--filter",
            &format!("port {udp_port} or port {tcp_port}"),
            "--workers",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A failed assertion must not leave a capture running on the machine.
    let _guard = KillOnPanic(child.id());
    // The capture is open once it says so; no sleeping.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // Notes may come first (the DHCP handle's); "capturing on" comes once every handle is open.
    let mut said = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{said}");
        said.push_str(&line);
        if line.contains("capturing on lo") {
            break;
        }
    }

    let udp_tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_sport = udp_tx.local_addr().unwrap().port();
    for _ in 0..10 {
        udp_tx
            .send_to(&[7u8; 100], ("127.0.0.1", udp_port))
            .unwrap();
    }
    let mut client = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
    let tcp_sport = client.local_addr().unwrap().port();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    drop(client);
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).unwrap();
    drop(server);

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let mut err_rest = String::new();
    stderr.read_to_string(&mut err_rest).unwrap();
    assert_eq!(out.status.code(), Some(0), "{err_rest}");

    let q = Command::new(BIN)
        .args(["query", "--format", "jsonl", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    assert!(q.status.success());
    let recs: Vec<serde_json::Value> = String::from_utf8_lossy(&q.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let udp = recs
        .iter()
        .find(|r| r["proto"] == 17)
        .expect("a UDP record");
    assert_eq!(udp["sport"], udp_sport);
    assert_eq!(udp["dport"], udp_port);
    assert_eq!(udp["packets"], 10);
    // 100 bytes of payload + 8 UDP + 20 IPv4.
    assert_eq!(udp["bytes"], 10 * 128);
    assert_eq!(udp["rev_packets"], 0);

    let tcp = recs.iter().find(|r| r["proto"] == 6).expect("a TCP record");
    assert_eq!(tcp["sport"], tcp_sport, "the SYN sender initiates");
    assert_eq!(tcp["dport"], tcp_port);
    assert_eq!(tcp["src"], "127.0.0.1");
    let syn = 0x02;
    let fin = 0x01;
    assert_eq!(tcp["tcp_flags"].as_u64().unwrap() & (syn | fin), syn | fin);
    assert_eq!(tcp["rev_tcp_flags"].as_u64().unwrap() & fin, fin);
    assert!(tcp["packets"].as_u64().unwrap() >= 4);
    assert_eq!(recs.len(), 2, "{recs:?}");
}

/// Kills the capture when the test panics before stopping it.
struct KillOnPanic(u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

/// `nflog:N` (Linux netfilter log, LINKTYPE_NFLOG) opens as a capture interface with the DHCP
/// handle on by default: a netfilter log group takes one listener, so a second handle on it
/// would make the capture fail at start. No rule feeds the group here (no iptables on the test
/// machines), so this checks the open and the link type, not the packets.
#[test]
fn netfilter_log_group_opens_with_its_link_type() {
    use flowkeep::capture::{LinkType, LiveConfig, LiveSet, LiveSource};
    if !is_root() {
        skip_or_fail("live capture needs root (CI runs as root)");
        return;
    }
    // A group nothing else on the machine is likely to listen on.
    let group = 40_000 + std::process::id() % 20_000;
    let cfg = LiveConfig {
        interface: format!("nflog:{group}"),
        ..LiveConfig::default()
    };
    let src = match LiveSource::open(&cfg) {
        Ok(s) => s,
        Err(e) if e.to_string().contains("No such device") => {
            skip_or_fail(&format!("this libpcap has no netfilter log devices: {e}"));
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(src.link_type(), LinkType::NFLOG);
    drop(src);
    // Another group: the kernel frees a group's log instance after an RCU grace period, so
    // binding the same group again at once can fail with EPERM (seen in CI).
    let cfg = LiveConfig {
        interface: format!("nflog:{}", group + 1),
        ..cfg
    };
    let set = LiveSet::open(std::slice::from_ref(&cfg));
    assert!(set.is_ok(), "{:?}", set.err());
}
