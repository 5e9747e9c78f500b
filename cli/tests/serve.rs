//! `ringpool serve` as a user meets it: a real HTTP client (ureq) on every
//! endpoint, raw sockets for every bad-input case, keep-alive, pipelining,
//! slow clients, the connection limit, a panicking job, and a graceful
//! shutdown with a request in flight. The server is the real binary, in a
//! process of its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Server::start_at("127.0.0.1:0", extra)
    }

    /// The server on `addr` (port 0, which it names in its start-up line).
    fn start_at(addr: &str, extra: &[&str]) -> Server {
        Server::start_in(Command::new(env!("CARGO_BIN_EXE_ringpool")), addr, extra)
    }

    /// The server with its open-file limit (soft and hard) at `n`.
    fn start_with_fd_limit(n: u32, extra: &[&str]) -> Server {
        let mut sh = Command::new("sh");
        sh.args([
            "-c",
            &format!("ulimit -n {n} && ulimit -Hn {n} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_ringpool"),
        ]);
        Server::start_in(sh, "127.0.0.1:0", extra)
    }

    fn start_in(mut cmd: Command, addr: &str, extra: &[&str]) -> Server {
        // Port 0: the server binds a free port itself and names it in its
        // start-up line, so parallel tests (and other processes) never race
        // for a port.
        let mut child = cmd
            .args(["serve", "--addr", addr, "--workers", "1", "--panic-route"])
            .args(extra)
            .env("RUST_LOG", "warn,ringpool::serve=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        // Reads the log to its end (a full pipe would block the server),
        // handing over the address, then everything read if it never came.
        std::thread::spawn(move || {
            let mut seen = String::new();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(Ok(addr));
                        sent = true;
                    }
                    seen.push_str(&line);
                    seen.push('\n');
                }
            }
            if !sent {
                let _ = tx.send(Err(seen));
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(addr)) => addr,
            Ok(Err(log)) => panic!("ringpool serve exited before listening: {log}"),
            Err(_) => panic!("ringpool serve did not start within 20 s"),
        };
        Server { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Connects again and again until a `GET /health` on a new connection
    /// is answered 200, failing with `what` after 10 s; each connection
    /// waits `patience` for its answer, and `other(status, response)` sees
    /// every other answer (status 0: none in time, as from a connection
    /// the server has not accepted).
    fn wait_served(&self, what: &str, patience: Duration, mut other: impl FnMut(u16, &str)) {
        let t0 = Instant::now();
        loop {
            let mut c = self.raw();
            c.set_read_timeout(Some(patience)).unwrap();
            let mut out = Vec::new();
            let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let _ = c.read_to_end(&mut out);
            let resp = String::from_utf8_lossy(&out);
            let status = status_of(&resp);
            if status == 200 {
                return;
            }
            other(status, &resp);
            assert!(t0.elapsed() < Duration::from_secs(10), "{what}: {resp}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM; the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The address in `ringpool serve`'s start-up line
/// ("... listening on http://ADDR (...)"), if `line` is it.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on http://").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `req` raw and reads until the server closes (or `timeout`).
fn exchange(s: &mut TcpStream, req: &[u8]) -> String {
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Reads one response (head + Content-Length body) from `r`.
fn read_response(r: &mut BufReader<&TcpStream>) -> (u16, Vec<u8>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = status_of(&line);
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status, body)
}

#[test]
fn every_endpoint_with_a_real_client() {
    let srv = Server::start(&[]);
    let agent = ureq::agent();
    let r = agent.get(&srv.url("/health")).call().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.into_string().unwrap(), "ok\n");
    let body = vec![7u8; 16 * 1024];
    let r = agent.post(&srv.url("/hash")).send_bytes(&body).unwrap();
    assert_eq!(r.into_string().unwrap(), ringpool_server::work::hash(&body));
    let r = agent.post(&srv.url("/compress")).send_bytes(&body).unwrap();
    let mut got = Vec::new();
    r.into_reader().read_to_end(&mut got).unwrap();
    assert_eq!(got, ringpool_server::work::compress(&body).unwrap());
    let r = agent
        .post(&srv.url("/password/verify"))
        .send_string("ringpool")
        .unwrap();
    assert_eq!(r.into_string().unwrap(), r#"{"ok":true}"#);
    let r = agent
        .post(&srv.url("/password/verify"))
        .send_string("wrong")
        .unwrap();
    assert_eq!(r.into_string().unwrap(), r#"{"ok":false}"#);
    let stats = agent
        .get(&srv.url("/stats"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(stats.contains("\"handoff\""), "{stats}");
    assert!(stats.contains("\"completions\":4"), "{stats}");
    match agent.get(&srv.url("/nope")).call() {
        Err(ureq::Error::Status(404, _)) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    match agent.get(&srv.url("/hash")).call() {
        Err(ureq::Error::Status(405, r)) => assert_eq!(r.header("allow"), Some("POST")),
        other => panic!("expected 405, got {other:?}"),
    }
    // An absolute-form target (RFC 9112, 3.2.2) routes on its path.
    let s = srv.raw();
    let mut w = &s;
    w.write_all(b"POST http://x/hash HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .unwrap();
    assert_eq!(
        read_response(&mut BufReader::new(&s)),
        (200, ringpool_server::work::hash(b"hi").into_bytes())
    );
    assert!(srv.stop().success());
}

#[test]
fn an_error_answer_survives_the_input_it_left_unread() {
    // The server answers these before it has read all the client sent,
    // then closes, which resets the connection (unread input). The answer
    // must still reach a client that reads only after it has sent it all
    // (Linux keeps what arrived before the reset readable).
    let srv = Server::start(&["--max-body", "1000"]);
    let mut big_body = b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n".to_vec();
    big_body.resize(big_body.len() + 50_000, b'a');
    let mut big_head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big_head.extend(std::iter::repeat_n(b'x', 20_000));
    big_head.extend_from_slice(b"\r\n\r\n");
    for (req, want) in [(big_body, 413), (big_head, 431)] {
        let mut s = srv.raw();
        // It fits in the socket buffers. Then time for the answer and the
        // close to arrive before the read.
        s.write_all(&req).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut line = String::new();
        BufReader::new(&s)
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("{want}: no answer but {e}"));
        assert!(line.starts_with(&format!("HTTP/1.1 {want} ")), "{line:?}");
    }
    assert!(srv.stop().success());
}

#[test]
fn bad_input_is_answered_and_closed() {
    let srv = Server::start(&["--max-body", "1000", "--max-head", "2048"]);
    let cases: &[(&[u8], u16)] = &[
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nHost x\r\n\r\n", 400),
        (
            b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            400,
        ),
        (b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        (b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        // RFC 9112, section 3.2: Host is required, once.
        (b"GET /health HTTP/1.1\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ];
    for (req, want) in cases {
        let mut s = srv.raw();
        let resp = exchange(&mut s, req);
        assert_eq!(
            status_of(&resp),
            *want,
            "{:?} -> {resp}",
            String::from_utf8_lossy(req)
        );
        assert!(
            resp.contains("Connection: close") || resp.contains("connection: close"),
            "{resp}"
        );
    }
    // 413 before the body is sent.
    let mut s = srv.raw();
    s.write_all(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(&s);
    assert_eq!(read_response(&mut r).0, 413);
    // A chunked body over the limit: 413 too.
    let mut s = srv.raw();
    let mut req = b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        req.extend_from_slice(b"1f4\r\n");
        req.extend_from_slice(&[b'a'; 500]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(status_of(&exchange(&mut s, &req)), 413);
    // A header block over the limit: 431.
    let mut s = srv.raw();
    let mut req = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'x', 4096));
    req.extend_from_slice(b"\r\n\r\n");
    assert_eq!(status_of(&exchange(&mut s, &req)), 431);
    // Chunked bodies are fine.
    let mut s = srv.raw();
    let resp = exchange(
        &mut s,
        b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(status_of(&resp), 200);
    assert!(
        resp.ends_with(&ringpool_server::work::hash(b"hello")),
        "{resp}"
    );
    // And the server is still serving.
    assert_eq!(ureq::get(&srv.url("/health")).call().unwrap().status(), 200);
}

#[test]
fn head_gets_a_get_routes_head_and_no_body() {
    let srv = Server::start(&[]);
    // Pipelined: were a body sent for the HEAD, it would be read as the
    // start of the next response.
    let all = exchange(
        &mut srv.raw(),
        b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /hash HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let parts: Vec<&str> = all.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(parts.len(), 3, "{all:?}");
    assert!(parts[0].starts_with("200 OK\r\n"), "{all:?}");
    assert!(parts[0].contains("Content-Length: 3\r\n"), "{all:?}");
    assert!(parts[0].ends_with("\r\n\r\n"), "no body: {all:?}");
    assert!(parts[1].starts_with("405 "), "{all:?}");
    assert!(parts[1].contains("Allow: POST\r\n") && parts[1].ends_with("\r\n\r\n"));
    assert!(parts[2].starts_with("200 OK\r\n") && parts[2].ends_with("\r\n\r\nok\n"));
    assert!(srv.stop().success());
}

#[test]
fn thousands_of_keep_alive_requests_on_one_connection() {
    let srv = Server::start(&[]);
    let s = srv.raw();
    let mut w = &s;
    let mut r = BufReader::new(&s);
    for i in 0..5000 {
        if i % 10 == 0 {
            w.write_all(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
                .unwrap();
            let (st, body) = read_response(&mut r);
            assert_eq!(
                (st, body),
                (200, ringpool_server::work::hash(b"hi").into_bytes())
            );
        } else {
            w.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            assert_eq!(read_response(&mut r), (200, b"ok\n".to_vec()));
        }
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let srv = Server::start(&[]);
    let s = srv.raw();
    let mut batch = Vec::new();
    let bodies: Vec<String> = (0..20).map(|i| format!("body-{i}")).collect();
    for (i, b) in bodies.iter().enumerate() {
        if i % 3 == 0 {
            batch.extend_from_slice(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        } else {
            batch.extend_from_slice(
                format!(
                    "POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{b}",
                    b.len()
                )
                .as_bytes(),
            );
        }
    }
    (&s).write_all(&batch).unwrap();
    let mut r = BufReader::new(&s);
    for (i, b) in bodies.iter().enumerate() {
        let (st, body) = read_response(&mut r);
        assert_eq!(st, 200);
        if i % 3 == 0 {
            assert_eq!(body, b"ok\n");
        } else {
            assert_eq!(
                body,
                ringpool_server::work::hash(b.as_bytes()).into_bytes(),
                "response {i}"
            );
        }
    }
}

#[test]
fn slow_loris_is_timed_out_while_others_are_served() {
    let srv = Server::start(&["--request-timeout", "0.5", "--idle-timeout", "0.7"]);
    let mut slow = srv.raw();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: ").unwrap();
    // Meanwhile another client is served.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(300) {
        assert_eq!(ureq::get(&srv.url("/health")).call().unwrap().status(), 200);
    }
    let mut out = String::new();
    let _ = slow.read_to_string(&mut out);
    assert_eq!(status_of(&out), 408, "{out}");
    // A stalled body is timed out too.
    let mut slow = srv.raw();
    slow.write_all(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let mut out = String::new();
    let _ = slow.read_to_string(&mut out);
    assert_eq!(status_of(&out), 408, "{out}");
    // An idle keep-alive connection is closed, silently.
    let idle = srv.raw();
    let t0 = Instant::now();
    let mut buf = [0u8; 16];
    let n = (&idle).read(&mut buf).unwrap();
    assert_eq!(n, 0, "an idle connection gets no bytes, only the close");
    assert!(t0.elapsed() >= Duration::from_millis(500));
}

/// `--request-timeout` bounds the whole request, not each read: a client
/// that trickles its head a byte every 100 ms (each read well within the
/// timeout) is answered 408 once the request has taken the timeout.
#[test]
fn a_trickled_request_is_timed_out_as_a_whole() {
    let srv = Server::start(&["--request-timeout", "1"]);
    let slow = srv.raw();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = slow.try_clone().unwrap();
    let t0 = Instant::now();
    let trickle = std::thread::spawn(move || {
        let head = b"GET /health HTTP/1.1\r\nHost: x\r\n".iter();
        let filler = std::iter::repeat(b"X-Pad: y\r\n".iter()).flatten();
        for b in head.chain(filler).take(400) {
            if writer.write_all(&[*b]).is_err() {
                return; // the server closed the connection
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut out = String::new();
    let _ = (&slow).read_to_string(&mut out);
    let took = t0.elapsed();
    assert_eq!(status_of(&out), 408, "{out}");
    assert!(took < Duration::from_secs(5), "408 after {took:?}");
    trickle.join().unwrap();
}

#[test]
fn the_connection_limit_refuses_the_excess() {
    let srv = Server::start(&["--max-conns", "2"]);
    // Two connections both served (and so counted); the start-up probe's
    // connection may still be counted for a moment, so retry until then.
    let t0 = Instant::now();
    let (a, b) = loop {
        let (a, b) = (srv.raw(), srv.raw());
        let ok = [&a, &b].iter().all(|s| {
            let mut w = *s;
            w.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            read_response(&mut BufReader::new(*s)).0 == 200
        });
        if ok {
            break (a, b);
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
        drop((a, b));
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut c = srv.raw();
    let resp = exchange(&mut c, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_of(&resp), 503, "{resp}");
    drop((a, b));
    // Room again once they are gone.
    srv.wait_served(
        "no room once they are gone",
        Duration::from_secs(10),
        |_, _| {},
    );
}

/// Clients that send requests and never read the answers: once their
/// socket buffers fill, each send stalls, and after `--write-timeout` the
/// server drops them. Before, they held their connections (and the
/// connection limit) for ever: with `--max-conns 2`, two of them had every
/// later client answered 503.
#[test]
fn clients_that_never_read_are_dropped_after_the_write_timeout() {
    let srv = Server::start(&["--max-conns", "2", "--write-timeout", "0.5"]);
    // Enough pipelined requests that their answers overflow every buffer
    // between the server and a client that does not read.
    let batch = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4096);
    let stalled: Vec<_> = (0..2)
        .map(|_| {
            let s = srv.raw();
            s.set_write_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut w = &s;
            let t0 = Instant::now();
            // Until the server stops reading (its writes stall) or drops us.
            while t0.elapsed() < Duration::from_secs(3) && w.write_all(&batch).is_ok() {}
            s
        })
        .collect();
    // Within the timeout and a margin, a new client is served (not 503).
    srv.wait_served(
        "clients that never read still hold the connection limit",
        Duration::from_secs(10),
        |status, resp| assert_eq!(status, 503, "{resp}"),
    );
    // And the stalled ones were closed by the server: reading what they
    // were sent ends (at the close or a reset), it does not wait for ever.
    for s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let ended = loop {
            match (&s).read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(ended, "a stalled client's connection was not closed");
    }
}

/// Out of file descriptors: accepts fail with EMFILE. The server backs off
/// (no busy loop), keeps serving the connections it has, and accepts again
/// once some close.
#[test]
fn out_of_fds_the_server_backs_off_serves_and_recovers() {
    let srv = Server::start_with_fd_limit(64, &[]);
    let pid = srv.child.id();
    let cpu_ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let mut first = srv.raw();
    let resp = |s: &mut TcpStream| {
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_response(&mut BufReader::new(&*s)).0
    };
    assert_eq!(resp(&mut first), 200);
    // More connections than fds: the kernel completes them (the backlog),
    // the server cannot accept the excess.
    let extra: Vec<TcpStream> = (0..100).map(|_| srv.raw()).collect();
    std::thread::sleep(Duration::from_millis(300));
    // The limit did bite: the last of them is not being served.
    let mut last = extra.last().unwrap();
    last.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    last.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(last.read(&mut buf).is_err(), "the fd limit did not bite");
    let t0 = cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks() - t0;
    // A retry loop without back-off would burn the whole second (100 ticks).
    assert!(spent < 50, "{spent} ticks in 1 s while out of fds");
    assert_eq!(
        resp(&mut first),
        200,
        "an accepted connection is still served"
    );
    drop(extra);
    // Room again: a new connection is served.
    // Short patience: a connection still queued behind the limit answers
    // nothing until it is accepted.
    srv.wait_served("not accepting again", Duration::from_millis(500), |_, _| {});
}

#[test]
fn a_panicking_job_is_a_500_and_the_server_goes_on() {
    let srv = Server::start(&[]);
    let s = srv.raw();
    (&s).write_all(b"POST /__panic HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut BufReader::new(&s)).0, 500);
    assert_eq!(ureq::get(&srv.url("/health")).call().unwrap().status(), 200);
    let r = ureq::post(&srv.url("/hash")).send_string("x").unwrap();
    assert_eq!(r.into_string().unwrap(), ringpool_server::work::hash(b"x"));
}

#[test]
fn sigterm_drains_a_request_in_flight_and_exits_zero() {
    let srv = Server::start(&[]);
    let s = srv.raw();
    // Half a request: its body is still to come when SIGTERM lands.
    (&s).write_all(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let addr = srv.addr;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(srv.child.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(200));
    // New connections are refused now.
    assert!(
        TcpStream::connect(addr).is_err() || {
            let mut t = TcpStream::connect(addr).unwrap();
            t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            exchange(&mut t, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").is_empty()
        }
    );
    (&s).write_all(b"world").unwrap();
    let (st, body) = read_response(&mut BufReader::new(&s));
    assert_eq!(
        (st, body),
        (200, ringpool_server::work::hash(b"helloworld").into_bytes())
    );
    drop(s);
    assert!(srv.stop().success());
}

/// `--password-hash` sets what `/password/verify` checks; a bad one is
/// refused at start-up with a reason, before anything listens.
#[test]
fn the_password_hash_is_configurable_and_checked() {
    let phc = ringpool_server::work::hash_password(b"hunter2", "c29tZXNhbHQxMjM0").unwrap();
    let srv = Server::start(&["--password-hash", phc.as_str()]);
    let agent = ureq::agent();
    for (password, answer) in [
        ("hunter2", r#"{"ok":true}"#),
        ("ringpool", r#"{"ok":false}"#),
    ] {
        let r = agent
            .post(&srv.url("/password/verify"))
            .send_string(password)
            .unwrap();
        assert_eq!(r.into_string().unwrap(), answer, "{password}");
    }
    assert!(srv.stop().success());
    for bad in [
        "hunter2",
        "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    ] {
        let err = refused(&["--addr", "127.0.0.1:0", "--password-hash", bad], &[]);
        assert!(err.contains("--password-hash"), "{bad}: {err}");
    }
}

/// Runs `ringpool serve <args>` with `env` set, asserts that it fails, and
/// returns what it wrote to stderr.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ringpool"))
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Bad thread counts are refused before anything starts, with the flag's
/// name (100,000 rings once made the process abort, out of memory maps);
/// an address in use is named.
#[test]
fn bad_thread_counts_and_a_taken_address_are_refused() {
    for args in [
        ["--rings", "0"],
        ["--rings", "100000"],
        ["--workers", "0"],
        ["--workers", "100000"],
        // Timeouts must be finite, above zero and at most a year (NaN and
        // 1e300 once panicked converting to a Duration).
        ["--idle-timeout", "nan"],
        ["--request-timeout", "1e300"],
        ["--write-timeout", "-1"],
        ["--idle-timeout", "0"],
        // Configurations that could only refuse: no connection, no head.
        ["--max-conns", "0"],
        ["--max-head", "10"],
    ] {
        let err = refused(&[&["--addr", "127.0.0.1:0"][..], &args].concat(), &[]);
        assert!(
            err.contains(args[0].trim_start_matches('-')),
            "{args:?}: {err}"
        );
    }
    // An address in use: the error says which.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = refused(&["--addr", &addr], &[]);
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
    // A `RUST_LOG` that is not a filter is said, not ignored in silence
    // (logging goes on at info: the address error is still logged).
    let err = refused(&["--addr", &addr], &[("RUST_LOG", "=[}{")]);
    assert!(
        err.contains("RUST_LOG") && err.contains("not a valid filter") && err.contains("in use"),
        "{err}"
    );
}

/// `--addr` takes a host name too (resolved, its first address).
#[test]
fn the_address_may_be_a_host_name() {
    let srv = Server::start_at("localhost:0", &[]);
    assert!(srv.addr.ip().is_loopback(), "{}", srv.addr);
    assert_eq!(ureq::get(&srv.url("/health")).call().unwrap().status(), 200);
    for (bad, says) in [
        ("localhost", "not host:port"),
        ("no-such-host.invalid:80", "cannot resolve"),
    ] {
        let err = refused(&["--addr", bad], &[]);
        assert!(err.contains(says), "{bad}: {err}");
    }
}

/// A connection's jobs reuse the buffers they carry to the pool: answers
/// stay right across bodies of different sizes and different routes on one
/// keep-alive connection.
#[test]
fn one_connections_jobs_reuse_their_buffers_and_stay_right() {
    let srv = Server::start(&[]);
    let agent = ureq::agent();
    let big = vec![3u8; 16 * 1024];
    for body in [&big[..], b"x", b"", &big[..100], &big[..]] {
        let r = agent.post(&srv.url("/hash")).send_bytes(body).unwrap();
        assert_eq!(r.into_string().unwrap(), ringpool_server::work::hash(body));
        let r = agent.post(&srv.url("/compress")).send_bytes(body).unwrap();
        let mut got = Vec::new();
        r.into_reader().read_to_end(&mut got).unwrap();
        assert_eq!(got, ringpool_server::work::compress(body).unwrap());
    }
    let r = agent
        .post(&srv.url("/password/verify"))
        .send_string("ringpool")
        .unwrap();
    assert_eq!(r.into_string().unwrap(), r#"{"ok":true}"#);
    let r = agent.post(&srv.url("/hash")).send_bytes(b"y").unwrap();
    assert_eq!(r.into_string().unwrap(), ringpool_server::work::hash(b"y"));
    assert!(srv.stop().success());
}
