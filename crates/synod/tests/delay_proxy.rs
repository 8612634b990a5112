//! `synod delay-proxy`: bytes arrive intact and in order, each direction at least the one-way
//! delay late (a lower bound only: delays add, so this cannot flake on a slow machine).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, free_port};

#[test]
fn the_delay_proxy_delays_each_direction_and_keeps_bytes_in_order() {
    // An echo server behind the proxy.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = server.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut c, _) = server.accept().unwrap();
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = c.read(&mut buf).unwrap_or(0);
            if n == 0 || c.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
    let listen = free_port();
    let mut proxy = Command::new(BIN)
        .args([
            "delay-proxy",
            "--delay-ms",
            "40",
            "--jitter-ms",
            "10",
            "--route",
        ])
        .arg(format!("{listen}={target}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        if let Ok(c) = TcpStream::connect(listen) {
            break c;
        }
        assert!(Instant::now() < deadline, "the proxy did not come up");
        std::thread::sleep(Duration::from_millis(20));
    };
    c.set_nodelay(true).unwrap();
    // Round trips: at least twice the one-way delay.
    for _ in 0..3 {
        let started = Instant::now();
        c.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        c.read_exact(&mut one).unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(80),
            "{:?}",
            started.elapsed()
        );
    }
    // A megabyte with a pattern, written and echoed concurrently: intact and in order despite
    // the jitter.
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = c.try_clone().unwrap();
    let sent = data.clone();
    let w = std::thread::spawn(move || writer.write_all(&sent).unwrap());
    let mut back = vec![0u8; data.len()];
    c.read_exact(&mut back).unwrap();
    w.join().unwrap();
    assert!(back == data, "bytes came back altered or out of order");
    proxy.kill().unwrap();
    proxy.wait().unwrap();
}
