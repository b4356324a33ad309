//! What the binary's tests share: running it, minting tokens, a minimal upstream, a server
//! process, a control plane and its admin API, waiting for a condition.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_portico");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn quickstart() -> PathBuf {
    repo().join("examples/quickstart")
}

pub fn mint(claims: &str) -> String {
    let key = quickstart().join("keys/demo-private.pem");
    let out = run(&[
        "token",
        "mint",
        "--key",
        key.to_str().unwrap(),
        "--alg",
        "RS256",
        "--claims",
        claims,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// A minimal HTTP upstream: answers every request with 200 and closes.
pub fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    addr
}

pub struct Server {
    pub child: Child,
    /// The gateway listener.
    pub addr: String,
    /// The admin listener.
    pub admin: String,
    /// What it printed on stdout after the two listener lines (read as it comes, so that a
    /// later line never meets a closed pipe).
    later: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(args: &[&str]) -> Self {
        Self::start_command("serve", args, &[])
    }

    /// `portico COMMAND ARGS…` with extra environment variables, on free ports.
    pub fn start_command(command: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(command, args, env, Stdio::null())
    }

    /// `portico serve ARGS…`, its log (stderr) written to `log`.
    pub fn start_logged(args: &[&str], log: &std::path::Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        Self::spawn("serve", args, &[], Stdio::from(file))
    }

    fn spawn(command: &str, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut child = Command::new(BIN)
            .arg(command)
            .args(args)
            .envs(env.iter().copied())
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut address = || {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let addr = line.trim().rsplit("http://").next().unwrap().to_string();
            assert!(addr.starts_with("127.0.0.1:"), "unexpected line {line:?}");
            addr
        };
        let addr = address();
        let admin = address();
        let later = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = later.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            addr,
            admin,
            later,
        }
    }

    /// The address of the listener a later stdout line announces (`portal listening on
    /// http://ADDR`), waiting for it.
    pub fn announced(&self, what: &str) -> String {
        let prefix = format!("{what} listening on http://");
        let mut found = None;
        wait_for(
            || {
                found = self
                    .later
                    .lock()
                    .unwrap()
                    .iter()
                    .find_map(|l| l.strip_prefix(&prefix).map(str::to_string));
                found.is_some()
            },
            &prefix,
        );
        found.unwrap()
    }

    pub fn status(&self, path: &str, method: &str, token: &str) -> u16 {
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(stream, "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split(' ').nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on `addr` (e.g. the admin listener): the status and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// The value of an unlabelled metric on an admin listener.
pub fn metric(admin: &str, name: &str) -> Option<f64> {
    let (_, body) = http_get(admin, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

pub fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The admin token of the control planes tests start.
pub const ADMIN_TOKEN: &str = "an-admin-token-for-this-test-0123456789";

/// `portico serve --database sqlite:DIR/portico.db --data-dir DIR`, with [`ADMIN_TOKEN`].
pub fn control_plane(dir: &portico_testkit::TempDir) -> Server {
    let database = format!("sqlite:{}", dir.path().join("portico.db").display());
    Server::start_command(
        "serve",
        &[
            "--database",
            &database,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[
            ("PORTICO_ADMIN_TOKEN", ADMIN_TOKEN),
            ("PORTICO_LOG", "warn"),
        ],
    )
}

/// The status and JSON body (`null` when it is not JSON) of an admin API call to `server`.
pub fn admin_call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::blocking::Client::new()
        .request(method, format!("http://{}/api/v1{path}", server.admin))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// A PostgreSQL URL on a loopback port nobody listens on.
pub fn unreachable_postgres() -> String {
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("postgres://postgres@127.0.0.1:{closed_port}/nowhere")
}
