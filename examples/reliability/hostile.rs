//! `hostile`: requests no well-behaved client sends — bad paths, methods, headers, bodies and
//! framing, huge heads, invalid UTF-8, chunked garbage — each on a fresh connection to the app
//! or the admin listener, with a share of valid requests mixed in as a control.
//!
//! Every case must end in well-formed responses (status line, header fields, framing that
//! matches the body) or, for a request that is malformed or incomplete by design, possibly a
//! close; never a 500, never a connection left hanging past `--hang`. A well-framed request
//! must get its response, and a control request its 2xx.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::raw::{NoResponse, Reader};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The daemon's app listener (host:port).
    #[arg(long)]
    app: SocketAddr,
    /// The daemon's admin listener (host:port).
    #[arg(long)]
    admin: SocketAddr,
    /// The admin token the daemon was started with (exercises PUT /admin/mode's body path).
    #[arg(long, default_value = "")]
    token: String,
    /// Cases to run (one connection each).
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Connections at once.
    #[arg(long, default_value_t = 48)]
    concurrency: usize,
    /// RNG seed: the same seed gives the same cases.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A case with neither its responses nor a close after this long is a hang.
    #[arg(long, value_parser = reclaimd::config::parse_duration, default_value = "6s")]
    hang: Duration,
    /// Users the daemon was seeded with (ids of the control requests).
    #[arg(long, default_value_t = 1000)]
    users: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Listener {
    App,
    Admin,
}

/// What a case may end in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// A well-framed request: exactly `n` responses must come (pipelined requests), the last
    /// possibly cut short only by a `Connection: close` on an earlier one.
    Responses(usize),
    /// A valid request: one 2xx response.
    Control,
    /// Malformed or incomplete framing: a response or a close, in time.
    ResponseOrClose,
    /// The client gives up mid-request: nothing to read, the server must just cope.
    Abandon,
}

/// One hostile exchange: what to write (with pauses) and what may come back.
struct Case {
    kind: &'static str,
    listener: Listener,
    parts: Vec<Part>,
    expect: Expect,
    head_request: bool,
}

enum Part {
    Bytes(Vec<u8>),
    Pause(Duration),
}

/// Per kind: how it ended.
#[derive(Debug, Default)]
struct Tally {
    cases: BTreeMap<&'static str, u64>,
    statuses: BTreeMap<u16, u64>,
    closed_without_response: u64,
    failures: Vec<String>,
    failures_total: u64,
    slowest: Duration,
}

pub async fn run(args: Args) -> bool {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let cases: Vec<Case> = (0..args.count).map(|_| case(&mut rng, &args)).collect();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, c) in cases.into_iter().enumerate() {
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let tally = tally.clone();
        let addr = match c.listener {
            Listener::App => args.app,
            Listener::Admin => args.admin,
        };
        let hang = args.hang;
        tasks.spawn(async move {
            let t0 = Instant::now();
            let verdict = exchange(addr, &c, hang).await;
            let took = t0.elapsed();
            drop(permit);
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            *t.cases.entry(c.kind).or_default() += 1;
            t.slowest = t.slowest.max(took);
            match verdict {
                Ok((statuses, closed)) => {
                    for s in statuses {
                        *t.statuses.entry(s).or_default() += 1;
                    }
                    t.closed_without_response += u64::from(closed);
                }
                Err(why) => {
                    t.failures_total += 1;
                    if t.failures.len() < 20 {
                        t.failures.push(format!("case {i} ({}): {why}", c.kind));
                    }
                }
            }
        });
        // Reap finished tasks as we go, so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    let statuses: Vec<String> = t.statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    let kinds: Vec<String> = t.cases.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    println!(
        "hostile: cases={} elapsed_s={:.1} failures={} closed_without_response={} slowest_s={:.2} server_500={}",
        t.cases.values().sum::<u64>(),
        elapsed.as_secs_f64(),
        t.failures_total,
        t.closed_without_response,
        t.slowest.as_secs_f64(),
        t.statuses.get(&500).copied().unwrap_or(0),
    );
    println!("hostile: statuses {}", statuses.join(" "));
    println!("hostile: kinds {}", kinds.join(" "));
    for f in &t.failures {
        println!("hostile: FAIL {f}");
    }
    t.failures_total == 0
}

/// Runs one case: writes its parts, then reads what its expectation calls for.
async fn exchange(addr: SocketAddr, c: &Case, hang: Duration) -> Result<(Vec<u16>, bool), String> {
    let deadline = Instant::now() + hang;
    let mut stream = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut write_failed = false;
    for part in &c.parts {
        match part {
            Part::Bytes(b) => {
                // The server may answer and close before it has read everything (a 400 on the
                // request line, a 431): a failed write is then expected, not an error.
                if tokio::time::timeout_at(deadline, stream.write_all(b))
                    .await
                    .map_or(true, |r| r.is_err())
                {
                    write_failed = true;
                    break;
                }
            }
            Part::Pause(d) => tokio::time::sleep(*d).await,
        }
    }
    let mut reader = Reader::new();
    let mut statuses = Vec::new();
    let wanted = match c.expect {
        Expect::Abandon => return Ok((statuses, false)),
        Expect::Responses(n) => n,
        Expect::Control | Expect::ResponseOrClose => 1,
    };
    for i in 0..wanted {
        match reader.response(&mut stream, deadline, c.head_request).await {
            Ok(r) => {
                check_response(c, &r)?;
                statuses.push(r.status);
                if r.closes() {
                    break;
                }
            }
            Err(NoResponse::Closed) => {
                return match c.expect {
                    Expect::ResponseOrClose => Ok((statuses, true)),
                    // After a response, the server may close instead of serving the next
                    // pipelined request only if it said so; otherwise a well-framed request
                    // went unanswered.
                    _ if write_failed => Err(format!(
                        "the server stopped reading and closed without a response ({i} of {wanted} came)"
                    )),
                    _ => Err(format!("closed without a response ({i} of {wanted} came)")),
                };
            }
            Err(NoResponse::Timeout) => {
                return Err(format!(
                    "hang: no response or close within {:.1} s ({i} of {wanted} came)",
                    hang.as_secs_f64()
                ))
            }
            Err(NoResponse::Malformed(why)) => return Err(format!("malformed response: {why}")),
        }
    }
    if c.expect == Expect::Control {
        if let Some(&s) = statuses.first() {
            if !(200..300).contains(&s) {
                return Err(format!("control request got {s}"));
            }
        }
    }
    Ok((statuses, false))
}

/// What every response must satisfy, beyond being well-formed HTTP.
fn check_response(c: &Case, r: &crate::raw::Response) -> Result<(), String> {
    if r.status == 500 {
        return Err(format!("500: {}", String::from_utf8_lossy(&r.body)));
    }
    let json = r
        .header("content-type")
        .is_some_and(|v| v.starts_with(b"application/json"));
    if json && !c.head_request {
        let v: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| {
            format!(
                "{} with a JSON content type but invalid JSON: {e}",
                r.status
            )
        })?;
        if r.status >= 400 && !v["error"]["code"].is_string() {
            return Err(format!("{} without an error code: {v}", r.status));
        }
    }
    if c.listener == Listener::App && json && r.header("server-timing").is_none() {
        return Err(format!("app response {} without Server-Timing", r.status));
    }
    if r.status == 503 && r.header("retry-after").is_none() {
        return Err("503 without Retry-After".into());
    }
    if r.status == 405 && r.header("allow").is_none() {
        return Err("405 without Allow".into());
    }
    if r.status == 401 && r.header("www-authenticate").is_none() {
        return Err("401 without WWW-Authenticate".into());
    }
    Ok(())
}

// ---- case generation -------------------------------------------------------------------------

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn pick_bytes(rng: &mut StdRng, items: &[&'static [u8]]) -> &'static [u8] {
    items[rng.random_range(0..items.len())]
}

fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.random()).collect()
}

/// A path a client could mistype, probe or forge.
fn hostile_path(rng: &mut StdRng) -> Vec<u8> {
    let fixed: &[&[u8]] = &[
        b"/api/users/0",
        b"/api/users/-1",
        b"/api/users/99999999999999999999999999",
        b"/api/users/1.5",
        b"/api/users/1e3",
        b"/api/users/0x10",
        b"/api/users/%31",
        b"/api/users/1/",
        b"/api/users/1//report",
        b"/api/users/1/report/extra",
        b"/api/users//report",
        b"/api/users/",
        b"/api/users",
        b"/api/orders/1",
        b"/api/order",
        b"//api/users/1",
        b"/API/USERS/1",
        b"/api/users/1?x=1&y",
        b"/api/users/1#frag",
        b"/api/users/1%00",
        b"/api/users/%FF%FE",
        b"/../../../../etc/passwd",
        b"/api/users/1/../../admin/mode",
        b"/metrics",
        b"/healthz",
        b"/admin/mode",
        b"*",
        b"http://evil.example/api/users/1",
        b"https://x/y",
        b"example.com:443",
        b"",
        b"/%",
        b"/%zz",
        b"/api/users/\xc3\xa9",
        b"/api/users/\xff\xfe",
        b"/\x00",
        b"/a b",
        b"/\t",
    ];
    match rng.random_range(0..5) {
        0 => {
            // A long path: past any buffer that assumed "short".
            let n = *pick(rng, &[1024usize, 8 * 1024, 64 * 1024, 300 * 1024]);
            let mut p = b"/api/users/".to_vec();
            p.extend(std::iter::repeat_n(b'1', n));
            p
        }
        1 => {
            let mut p = b"/api/users/".to_vec();
            let n = rng.random_range(1..40);
            p.extend(random_bytes(rng, n));
            p
        }
        _ => pick(rng, fixed).to_vec(),
    }
}

fn hostile_method(rng: &mut StdRng) -> Vec<u8> {
    let fixed: &[&[u8]] = &[
        b"GET",
        b"POST",
        b"PUT",
        b"DELETE",
        b"PATCH",
        b"HEAD",
        b"OPTIONS",
        b"TRACE",
        b"CONNECT",
        b"get",
        b"Get",
        b"FOO",
        b"BREW",
        b"G\x00T",
        b"GET GET",
        b"",
        b"\xc3\xa9",
        b"POST\t",
        b"M-SEARCH",
        b"PROPFIND",
    ];
    if rng.random_range(0..10) == 0 {
        let n = *pick(rng, &[64usize, 1024, 100_000]);
        return std::iter::repeat_n(b'X', n).collect();
    }
    pick(rng, fixed).to_vec()
}

fn hostile_version(rng: &mut StdRng) -> &'static [u8] {
    pick_bytes(
        rng,
        &[
            &b"HTTP/1.1"[..],
            b"HTTP/1.1",
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"HTTP/2.0",
            b"HTTP/0.9",
            b"HTTP/9.9",
            b"HTTP/1.1 extra",
            b"http/1.1",
            b"HTTP/1",
            b"",
        ],
    )
}

/// Extra header lines (each ending in CRLF), some legal, some not.
fn hostile_headers(rng: &mut StdRng, token: &str) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut framing_ok = true;
    let n = rng.random_range(0..4);
    for _ in 0..n {
        let (line, ok): (Vec<u8>, bool) = match rng.random_range(0..24) {
            0 => (b"X-Empty:\r\n".to_vec(), true),
            1 => (b"X-Utf8: \xc3\xa9t\xc3\xa9\r\n".to_vec(), true),
            2 => (b"X-Invalid-Utf8: \xff\xfe\xfd\r\n".to_vec(), true),
            3 => (b"Bad Name: x\r\n".to_vec(), false),
            4 => (b"NoColon\r\n".to_vec(), false),
            5 => (b": no name\r\n".to_vec(), false),
            6 => (b"X-Folded: a\r\n  continued\r\n".to_vec(), false),
            7 => (b"X-Nul: a\x00b\r\n".to_vec(), false),
            8 => {
                // One huge header value.
                let n = *pick(rng, &[4 * 1024usize, 64 * 1024, 512 * 1024, 2 * 1024 * 1024]);
                let mut l = b"X-Huge: ".to_vec();
                l.extend(std::iter::repeat_n(b'a', n));
                l.extend(b"\r\n");
                (l, n < 64 * 1024)
            }
            9 => {
                // Very many headers.
                let n = *pick(rng, &[50usize, 101, 1000, 10_000]);
                let mut l = Vec::new();
                for i in 0..n {
                    l.extend(format!("X-H{i}: v\r\n").as_bytes());
                }
                (l, n <= 90)
            }
            10 => (b"Expect: 100-continue\r\n".to_vec(), true),
            11 => (b"Connection: upgrade\r\nUpgrade: websocket\r\n".to_vec(), true),
            12 => (b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n".to_vec(), true),
            13 => (b"Authorization: Bearer wrong\r\n".to_vec(), true),
            14 => (format!("Authorization: Bearer {token}\r\n").into_bytes(), true),
            15 => (format!("Authorization: bEaReR   {token}  \r\n").into_bytes(), true),
            16 => (b"Authorization: Basic Zm9vOmJhcg==\r\n".to_vec(), true),
            17 => (b"Authorization: Bearer \xff\xfe\r\n".to_vec(), true),
            18 => (b"Content-Type: text/plain\r\n".to_vec(), true),
            19 => (b"Host: a\r\nHost: b\r\n".to_vec(), true),
            20 => (b"Accept-Encoding: gzip, br\r\n".to_vec(), true),
            21 => (b"X-Forwarded-For: 1.2.3.4, \xff\r\n".to_vec(), true),
            22 => (b"Cookie: a=1; b=\"\"\"\r\n".to_vec(), true),
            _ => (b"X-Trailing-Space : x\r\n".to_vec(), false),
        };
        framing_ok &= ok;
        out.extend(line);
    }
    (out, framing_ok)
}

/// An order body, mostly wrong.
fn hostile_body(rng: &mut StdRng) -> Vec<u8> {
    let fixed: &[&[u8]] = &[
        b"",
        b"{",
        b"}",
        b"null",
        b"[]",
        b"\"x\"",
        b"{}",
        b"{\"user_id\": 1}",
        b"{\"user_id\": \"1\", \"amount_cents\": 5}",
        b"{\"user_id\": 1, \"amount_cents\": -5}",
        b"{\"user_id\": 1, \"amount_cents\": 0}",
        b"{\"user_id\": 1, \"amount_cents\": 1e99}",
        b"{\"user_id\": 1, \"amount_cents\": 99999999999999999999999}",
        b"{\"user_id\": -1, \"amount_cents\": 5}",
        b"{\"user_id\": 999999999, \"amount_cents\": 5}",
        b"{\"user_id\": 1, \"amount_cents\": 5, \"status\": \"stolen\"}",
        b"{\"user_id\": 1, \"amount_cents\": 5, \"extra\": 1}",
        b"{\"user_id\": 1, \"amount_cents\": 5, \"user_id\": 2}",
        b"{\"user_id\": 1, \"amount_cents\": 5, \"status\": \"\xff\xfe\"}",
        b"{\"user_id\": 1, \"amount_cents\": 5, \"status\": \"\\ud800\"}",
        b"\xef\xbb\xbf{\"user_id\": 1, \"amount_cents\": 5}",
        b"{\"mode\": \"async\"}",
        b"{\"mode\": \"sync\"}",
        b"{\"mode\": \"turbo\"}",
        b"{\"mode\": null}",
        b"{\"mode\": \"async\", \"x\": 1}",
    ];
    match rng.random_range(0..6) {
        0 => {
            let depth = *pick(rng, &[100usize, 1000, 100_000]);
            let mut b = vec![b'['; depth];
            b.extend(vec![b']'; depth]);
            b
        }
        1 => {
            let n = rng.random_range(1..2000);
            random_bytes(rng, n)
        }
        _ => pick(rng, fixed).to_vec(),
    }
}

fn host() -> &'static [u8] {
    b"Host: reclaimd\r\n"
}

/// One well-formed request with the given parts.
fn request(method: &[u8], path: &[u8], headers: &[u8], body: &[u8], close: bool) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend(method);
    r.push(b' ');
    r.extend(path);
    r.extend(b" HTTP/1.1\r\n");
    r.extend(host());
    r.extend(headers);
    if !body.is_empty() {
        r.extend(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    if close {
        r.extend(b"Connection: close\r\n");
    }
    r.extend(b"\r\n");
    r.extend(body);
    r
}

fn control(rng: &mut StdRng, users: u64) -> Case {
    let id = rng.random_range(1..=users);
    let (method, path, body): (&[u8], String, Vec<u8>) = match rng.random_range(0..3) {
        0 => (b"GET", format!("/api/users/{id}"), Vec::new()),
        1 => (b"GET", format!("/api/users/{id}/report"), Vec::new()),
        _ => (
            b"POST",
            "/api/orders".into(),
            format!(r#"{{"user_id": {id}, "amount_cents": 100}}"#).into_bytes(),
        ),
    };
    let headers: &[u8] = if body.is_empty() {
        b""
    } else {
        b"Content-Type: application/json\r\n"
    };
    Case {
        kind: "control",
        listener: Listener::App,
        parts: vec![Part::Bytes(request(
            method,
            path.as_bytes(),
            headers,
            &body,
            true,
        ))],
        expect: Expect::Control,
        head_request: false,
    }
}

fn case(rng: &mut StdRng, args: &Args) -> Case {
    let listener = if rng.random_range(0..4) == 0 {
        Listener::Admin
    } else {
        Listener::App
    };
    let admin_path = |rng: &mut StdRng| -> Vec<u8> {
        pick(
            rng,
            &[
                &b"/admin/mode"[..],
                b"/healthz",
                b"/readyz",
                b"/metrics",
                b"/admin",
                b"/admin/mode/x",
            ],
        )
        .to_vec()
    };
    let path = |rng: &mut StdRng| -> Vec<u8> {
        if listener == Listener::Admin && rng.random_range(0..2) == 0 {
            admin_path(rng)
        } else {
            hostile_path(rng)
        }
    };
    // What hyper's request-line parser takes; anything else may be refused with a close.
    let valid_path =
        |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_graphic) && p.len() < 60 * 1024;
    let simple = |kind: &'static str, bytes: Vec<u8>, expect: Expect| Case {
        kind,
        listener,
        parts: vec![Part::Bytes(bytes)],
        expect,
        head_request: false,
    };
    match rng.random_range(0..20) {
        0 => control(rng, args.users),
        1 | 2 => {
            // Bad paths on a valid GET.
            let p = path(rng);
            let ok = valid_path(&p);
            let expect = if ok {
                Expect::Responses(1)
            } else {
                Expect::ResponseOrClose
            };
            simple("path", request(b"GET", &p, b"", b"", true), expect)
        }
        3 | 4 => {
            // Methods, on known and unknown paths.
            let m = hostile_method(rng);
            let p = if rng.random_range(0..2) == 0 {
                path(rng)
            } else {
                b"/api/users/1".to_vec()
            };
            let token_method = !m.is_empty() && m.iter().all(|&b| is_tchar(b)) && m.len() < 1024;
            let ok = token_method && valid_path(&p);
            let head = m == b"HEAD";
            Case {
                head_request: head,
                ..simple(
                    "method",
                    request(&m, &p, b"", b"", true),
                    if ok {
                        Expect::Responses(1)
                    } else {
                        Expect::ResponseOrClose
                    },
                )
            }
        }
        5 => {
            // Request line oddities: versions, spacing, line endings, no request line at all.
            let variants: Vec<Vec<u8>> = vec![
                [
                    b"GET /api/users/1 ".as_slice(),
                    hostile_version(rng),
                    b"\r\nHost: x\r\n\r\n",
                ]
                .concat(),
                b"GET /api/users/1\r\n\r\n".to_vec(),
                b"GET  /api/users/1  HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
                b"GET /api/users/1 HTTP/1.1\nHost: x\n\n".to_vec(),
                b"\r\n\r\n\r\nGET /api/users/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    .to_vec(),
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
                b"GET /api/users/1 HTTP/1.0\r\n\r\n".to_vec(),
                b"GET /api/users/1 HTTP/1.1\r\n\r\n".to_vec(),
                b"\x00\x00\x00\x00".to_vec(),
                b" GET /api/users/1 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            ];
            simple(
                "request_line",
                pick(rng, &variants).clone(),
                Expect::ResponseOrClose,
            )
        }
        6 | 7 => {
            // Headers.
            let (h, ok) = hostile_headers(rng, &args.token);
            let (m, p): (&[u8], Vec<u8>) = if listener == Listener::Admin {
                (pick_bytes(rng, &[b"GET", b"PUT"]), b"/admin/mode".to_vec())
            } else {
                (b"GET", b"/api/users/2".to_vec())
            };
            let body: &[u8] = if m == b"PUT" {
                b"{\"mode\": \"sync\"}"
            } else {
                b""
            };
            let expect = if ok {
                Expect::Responses(1)
            } else {
                Expect::ResponseOrClose
            };
            simple("headers", request(m, &p, &h, body, true), expect)
        }
        8..=10 => {
            // Bodies: orders on the app, mode changes on the admin listener.
            let body = hostile_body(rng);
            let (m, p, auth) = if listener == Listener::Admin {
                (
                    &b"PUT"[..],
                    &b"/admin/mode"[..],
                    format!("Authorization: Bearer {}\r\n", args.token),
                )
            } else {
                (&b"POST"[..], &b"/api/orders"[..], String::new())
            };
            let ct: &[u8] = pick_bytes(
                rng,
                &[
                    b"Content-Type: application/json\r\n",
                    b"",
                    b"Content-Type: text/plain\r\n",
                ],
            );
            let headers = [auth.as_bytes(), ct].concat();
            simple(
                "body",
                request(m, p, &headers, &body, true),
                Expect::Responses(1),
            )
        }
        11 | 12 => chunked(rng, listener),
        13 => content_length(rng, listener),
        14 => {
            // Pipelined requests, the last one closing.
            let n = rng.random_range(2..6);
            let mut bytes = Vec::new();
            for i in 0..n {
                let id = rng.random_range(1..=args.users);
                bytes.extend(request(
                    b"GET",
                    format!("/api/users/{id}").as_bytes(),
                    b"",
                    b"",
                    i == n - 1,
                ));
            }
            simple("pipelined", bytes, Expect::Responses(n))
        }
        15 => {
            // Smuggling attempts: length and chunking disagree.
            let variants: Vec<Vec<u8>> = vec![
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/mode HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n".to_vec(),
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n".to_vec(),
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n".to_vec(),
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".to_vec(),
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello".to_vec(),
                b"POST /api/orders HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            ];
            simple(
                "smuggling",
                pick(rng, &variants).clone(),
                Expect::ResponseOrClose,
            )
        }
        16 => {
            // A valid request written a few bytes at a time.
            let id = rng.random_range(1..=args.users);
            let bytes = request(
                b"GET",
                format!("/api/users/{id}").as_bytes(),
                b"",
                b"",
                true,
            );
            let mut parts = Vec::new();
            for piece in bytes.chunks(rng.random_range(1..8)) {
                parts.push(Part::Bytes(piece.to_vec()));
                if rng.random_range(0..8) == 0 {
                    parts.push(Part::Pause(Duration::from_millis(rng.random_range(1..30))));
                }
            }
            Case {
                kind: "trickle",
                listener: Listener::App,
                parts,
                expect: Expect::Responses(1),
                head_request: false,
            }
        }
        17 => {
            // Incomplete: a head or a body that never finishes (cut by the server's timeouts).
            let variants: Vec<Vec<u8>> = vec![
                b"GET /api/users/1 HTTP/1.1\r\nHost: x\r\n".to_vec(),
                b"GET /api/use".to_vec(),
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"user_id\"".to_vec(),
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"us".to_vec(),
                b"PUT /admin/mode HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{".to_vec(),
            ];
            let mut bytes = pick(rng, &variants).clone();
            if bytes.starts_with(b"PUT") {
                // With the token, so the body is actually read.
                let auth = format!("Authorization: Bearer {}\r\n", args.token);
                let at = bytes
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map_or(0, |i| i + 2);
                bytes.splice(at..at, auth.into_bytes());
            }
            simple("incomplete", bytes, Expect::ResponseOrClose)
        }
        18 => {
            // The client leaves mid-request.
            let variants: Vec<Vec<u8>> = vec![
                b"GET /api/users/1 HTTP/1.1\r\nHo".to_vec(),
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"user"
                    .to_vec(),
                b"GET /api/users/1/report HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
                Vec::new(),
            ];
            simple("abandon", pick(rng, &variants).clone(), Expect::Abandon)
        }
        _ => {
            // Raw garbage.
            let n = *pick(rng, &[1usize, 16, 1024, 70_000]);
            let mut bytes = random_bytes(rng, n);
            if rng.random_range(0..2) == 0 {
                bytes.extend(b"\r\n\r\n");
            }
            simple("garbage", bytes, Expect::ResponseOrClose)
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Chunked bodies, most of them broken.
fn chunked(rng: &mut StdRng, listener: Listener) -> Case {
    let order = br#"{"user_id": 3, "amount_cents": 250}"#;
    let good = {
        let mut b = Vec::new();
        for piece in order.chunks(7) {
            b.extend(format!("{:x}\r\n", piece.len()).as_bytes());
            b.extend(piece);
            b.extend(b"\r\n");
        }
        b.extend(b"0\r\n\r\n");
        b
    };
    let bodies: Vec<(Vec<u8>, bool)> = vec![
        (good.clone(), true),
        (
            b"3;ext=1\r\n{\"u\r\n0\r\nX-Trailer: 1\r\n\r\n".to_vec(),
            true,
        ),
        (b"zz\r\nabc\r\n0\r\n\r\n".to_vec(), false),
        (b"-1\r\nabc\r\n0\r\n\r\n".to_vec(), false),
        (b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n".to_vec(), false),
        (b"fffffff\r\nabc".to_vec(), false),
        (b"3\r\nabcdef\r\n0\r\n\r\n".to_vec(), false),
        (b"3\r\nab".to_vec(), false),
        (b"5\r\nhello".to_vec(), false),
        (b"0\r\n".to_vec(), false),
        (b"\r\n\r\n".to_vec(), false),
        (b"3\nabc\n0\n\n".to_vec(), false),
        (
            b"10000\r\n"
                .iter()
                .copied()
                .chain(std::iter::repeat_n(b'a', 0x10000))
                .chain(*b"\r\n0\r\n\r\n")
                .collect(),
            true,
        ),
        (b"1\r\n\xff\r\n0\r\n\r\n".to_vec(), true),
    ];
    let (body, ok) = pick(rng, &bodies).clone();
    let (m, p): (&[u8], &[u8]) = if listener == Listener::Admin {
        (b"PUT", b"/admin/mode")
    } else {
        (b"POST", b"/api/orders")
    };
    let mut bytes = Vec::new();
    bytes.extend(m);
    bytes.push(b' ');
    bytes.extend(p);
    bytes.extend(b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    bytes.extend(body);
    Case {
        kind: "chunked",
        listener,
        parts: vec![Part::Bytes(bytes)],
        expect: if ok {
            Expect::Responses(1)
        } else {
            Expect::ResponseOrClose
        },
        head_request: false,
    }
}

/// Content-Length values that lie or cannot be numbers.
fn content_length(rng: &mut StdRng, listener: Listener) -> Case {
    let body: &[u8] = br#"{"user_id": 4, "amount_cents": 99}"#;
    let cl = *pick(
        rng,
        &[
            "-1",
            "abc",
            "18446744073709551616",
            "99999999999999999999999999",
            "0x20",
            " 35",
            "35 ",
            "+35",
            "1000000000",
            "65537",
            "",
            "10",
            "35",
        ],
    );
    let (m, p): (&[u8], &[u8]) = if listener == Listener::Admin {
        (b"PUT", b"/admin/mode")
    } else {
        (b"POST", b"/api/orders")
    };
    let mut bytes = [m, b" ", p].concat();
    bytes.extend(
        format!(" HTTP/1.1\r\nHost: x\r\nContent-Length: {cl}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    bytes.extend(body);
    Case {
        kind: "content_length",
        listener,
        parts: vec![Part::Bytes(bytes)],
        // Some of these are incomplete on purpose (a length past the body): a 408 or a close.
        expect: Expect::ResponseOrClose,
        head_request: false,
    }
}
