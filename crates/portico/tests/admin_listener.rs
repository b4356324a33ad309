//! The admin listener's limits, on the real binary: a request head must arrive within
//! `ADMIN_HEADER_READ_TIMEOUT` (slow loris), and at most `ADMIN_MAX_CONNECTIONS` connections
//! are served at once — both where it serves the admin REST API (`serve --database`) and
//! where it serves the operations endpoints alone (`serve --config`).

mod common;
use common::*;

use portico_gateway::server::{ADMIN_HEADER_READ_TIMEOUT, ADMIN_MAX_CONNECTIONS};
use portico_testkit::TempDir;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn from_files(dir: &TempDir) -> Server {
    let config = dir.write(
        "portico.yaml",
        "kind: Api\nmetadata: {name: open}\nspec: {listen_path: /open, upstream: 'http://127.0.0.1:9', keyless: true}\n",
    );
    Server::start(&[
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
}

/// Sends half a request line and reads until the server closes; how long that took.
fn time_until_cut_off(admin: &str) -> Duration {
    let mut stream = TcpStream::connect(admin).unwrap();
    stream
        .set_read_timeout(Some(ADMIN_HEADER_READ_TIMEOUT + Duration::from_secs(5)))
        .unwrap();
    let start = Instant::now();
    stream.write_all(b"GET /hea").unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{admin}: still open after {:?}: {e}", start.elapsed()),
    }
    start.elapsed()
}

#[test]
fn a_half_sent_request_is_cut_off_after_the_header_read_timeout() {
    let (api_dir, ops_dir) = (
        TempDir::new("admin-slow-api"),
        TempDir::new("admin-slow-ops"),
    );
    let servers = [control_plane(&api_dir), from_files(&ops_dir)];
    let took: Vec<Duration> = std::thread::scope(|scope| {
        let waits: Vec<_> = servers
            .iter()
            .map(|s| scope.spawn(|| time_until_cut_off(&s.admin)))
            .collect();
        waits.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (server, took) in ["serve --database", "serve --config"].iter().zip(took) {
        eprintln!("{server}: cut off after {took:?}");
        assert!(
            took >= ADMIN_HEADER_READ_TIMEOUT - Duration::from_millis(100)
                && took < ADMIN_HEADER_READ_TIMEOUT + Duration::from_secs(3),
            "{server}: cut off after {took:?}"
        );
    }
}

/// `GET /health` on `stream`; the status line, or `None` when no answer came within `wait`.
fn health(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut answer = [0u8; 64];
    match stream.read(&mut answer) {
        Ok(n) if n > 0 => Some(text(&answer[..n]).lines().next()?.to_string()),
        Ok(_) => None,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("reading the answer: {e}"),
    }
}

#[test]
fn connections_beyond_the_cap_wait_until_one_closes() {
    let dir = TempDir::new("admin-cap");
    let server = control_plane(&dir);
    // Every slot taken by a connection that sends nothing (each would be cut off after the
    // header read timeout; the test is done before that).
    let idle: Vec<TcpStream> = (0..ADMIN_MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(&server.admin).unwrap())
        .collect();
    let mut waiting = TcpStream::connect(&server.admin).unwrap();
    waiting
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(
        health(&mut waiting, Duration::from_secs(1)),
        None,
        "served beyond {ADMIN_MAX_CONNECTIONS} connections"
    );
    drop(idle);
    assert_eq!(
        health(&mut waiting, Duration::from_secs(3)).as_deref(),
        Some("HTTP/1.1 200 OK"),
        "served once the others closed"
    );
}
