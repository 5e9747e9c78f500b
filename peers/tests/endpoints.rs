//! Starts each peer binary on a free port and does one request per endpoint (and the
//! bad-input cases hyper lets the service answer) over a raw `TcpStream`; then SIGTERM
//! or SIGINT, and the peer must exit 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use ringpool_server::work;

struct Peer {
    child: Child,
    addr: String,
}

impl Peer {
    fn start(imp: &str) -> Peer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringpool-peer"))
            .args(["--impl", imp, "--addr", "127.0.0.1:0", "--workers", "2"])
            .args(["--threads", "2", "--max-body", "65536"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn ringpool-peer");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line {line:?}"))
            .to_owned();
        Peer { child, addr }
    }

    /// Sends `request` raw, reads until the server closes (requests say
    /// `Connection: close`), returns (status, head, body); status 0 if the server
    /// closed without a response.
    fn send(&self, request: &[u8]) -> (u16, String, Vec<u8>) {
        eprintln!(
            "> {}",
            String::from_utf8_lossy(&request[..request.len().min(40)])
        );
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        // Only a guard against a hang; no test depends on timing.
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        // The server may answer (413) and close before it has read everything.
        let _ = stream.write_all(request);
        let mut raw = Vec::new();
        // A reset after the response (the server closed with body bytes unread) is fine.
        let _ = stream.read_to_end(&mut raw);
        if raw.is_empty() {
            return (0, String::new(), raw);
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&raw)));
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        (status, head.to_ascii_lowercase(), raw[split + 4..].to_vec())
    }

    fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.send(&request)
    }

    /// Sends `signal` and waits: the peer must exit 0.
    fn stop(mut self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        assert!(status.success(), "{signal}: {status}");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // A failed test must not leave its server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn endpoints(imp: &str, signal: &str) {
    let peer = Peer::start(imp);

    let (status, _, body) = peer.get("/health");
    assert_eq!((status, &body[..]), (200, &b"ok\n"[..]));

    let data = vec![b'r'; 16 * 1024];
    let (status, _, body) = peer.post("/hash", &data);
    assert_eq!(status, 200);
    assert_eq!(body, work::hash(&data).into_bytes());

    let (status, head, body) = peer.post("/compress", &data);
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/zstd"));
    // Same level, same input, same frame (ringpool-server's tests check it decodes).
    assert_eq!(body, work::compress(&data).unwrap());

    let (status, _, body) = peer.post("/password/verify", b"ringpool");
    assert_eq!((status, &body[..]), (200, work::OK_TRUE));
    let (status, _, body) = peer.post("/password/verify", b"wrong");
    assert_eq!((status, &body[..]), (200, work::OK_FALSE));

    let (status, head, body) = peer.get("/stats");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/json"));
    let json = String::from_utf8(body).unwrap();
    let handoff = match imp {
        "hyper-blocking" => "spawn_blocking",
        "hyper-ringpool" => "ringpool offload",
        _ => "inline",
    };
    assert!(
        json.starts_with(&format!("{{\"handoff\":\"{handoff}\"")),
        "{json}"
    );
    assert!(json.contains("\"completions\":4"), "{json}");

    assert_eq!(peer.get("/nope").0, 404);
    let (status, head, _) = peer.post("/health", b"");
    assert_eq!(status, 405);
    assert!(head.contains("\r\nallow: get"), "{head}");
    let (status, head, _) = peer.get("/hash");
    assert_eq!(status, 405);
    assert!(head.contains("\r\nallow: post"), "{head}");

    // Over the limit by Content-Length: 413 without sending the body.
    let (status, head, _) =
        peer.send(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n");
    assert_eq!(status, 413);
    assert!(head.contains("connection: close"));
    // Over the limit by chunks.
    let mut chunked =
        b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..2 {
        chunked.extend_from_slice(b"8000\r\n");
        chunked.extend_from_slice(&[b'c'; 0x8000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"1\r\nc\r\n0\r\n\r\n");
    assert_eq!(peer.send(&chunked).0, 413);
    // A chunked body under the limit.
    let (status, _, body) = peer.send(
        b"POST /hash HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!((status, body), (200, work::hash(b"abc").into_bytes()));
    // Malformed, and smuggling-shaped: hyper answers 400 or closes without a response
    // (which one depends on where its parser stops); either way no request is served. (Both Content-Length and chunked is not here:
    // hyper lets chunked win, as RFC 9112 allows, where ringpool-server refuses it.)
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"[..],
        b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ] {
        let status = peer.send(bad).0;
        assert!(status == 0 || status == 400, "{status}");
    }

    // A head that stalls is timed out (hyper's `header_read_timeout`, which
    // needs the runtime's timer: the ringpool adapter has one too), while
    // the server goes on answering others.
    let mut stalled = TcpStream::connect(&peer.addr).unwrap();
    stalled
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    stalled
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nHo")
        .unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(peer.get("/health").0, 200);
    let mut rest = Vec::new();
    let r = stalled.read_to_end(&mut rest);
    let waited = t0.elapsed();
    assert!(
        waited >= ringpool_peers::HEADER_TIMEOUT / 2 && waited < std::time::Duration::from_secs(50),
        "the stalled connection ended after {waited:?} ({r:?})"
    );

    peer.stop(signal);
}

#[test]
fn hyper_blocking() {
    endpoints("hyper-blocking", "TERM");
}

#[test]
fn hyper_inline() {
    endpoints("hyper-inline", "INT");
}

#[test]
fn hyper_on_ringpool() {
    endpoints("hyper-ringpool", "TERM");
}
