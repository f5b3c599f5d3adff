//! The live page in a real headless Chromium (Debian's `chromium`, driven by `chromedriver`
//! from `chromium-driver` over the W3C WebDriver protocol), against a daemon under load.
//!
//! It reads what the page shows from the DOM and from the state object the page exposes
//! (`window.reclaimdLive.snapshot()`), never from pixels; the screenshots it saves
//! (`target/live-view/{sync,async}.png`) are for people and CI artifacts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reclaimd::api::Mode;
use serde_json::{json, Value};

use super::Load;
use crate::support::app::TestApp;
use crate::support::eventually;
use crate::support::temp::TempPath;
use crate::support::tools::tool;

/// One blocking HTTP/1.1 exchange with chromedriver (which keeps connections open: the
/// response is read by its length, or its chunks).
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        &s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut length = None;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let lower = line.trim().to_ascii_lowercase();
        if lower.is_empty() {
            break;
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
    }
    let mut text = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            text.extend_from_slice(&chunk[..n]);
        }
    } else {
        let n = length.expect("a Content-Length");
        text.resize(n, 0);
        reader.read_exact(&mut text).unwrap();
    }
    serde_json::from_slice(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&text)))
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for quad in clean.chunks(4) {
        let digits: Vec<u32> = quad
            .iter()
            .filter(|&&c| c != b'=')
            .map(|&c| value(c))
            .collect();
        let n = digits.iter().fold(0u32, |acc, d| (acc << 6) | d) << (6 * (4 - digits.len()));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..digits.len()]);
    }
    out
}

/// A headless Chromium session through chromedriver; both stopped on drop.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: TempPath,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    fn start() -> Browser {
        let chromedriver = tool("chromedriver");
        let chromium = tool("chromium");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        eventually("chromedriver answers", Duration::from_secs(30), || {
            TcpStream::connect(addr).is_ok()
        });
        let profile = TempPath::new("chromium-profile");
        std::fs::create_dir_all(profile.path()).unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    "--window-size=1400,1250",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let created = http(addr, "POST", "/session", Some(&caps));
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Browser {
            driver,
            addr,
            session,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = http(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        );
        // A WebDriver error: {"value": {"error": "...", "message": "...", "stacktrace": "..."}}.
        assert!(
            v["value"].get("stacktrace").is_none(),
            "{method} {path}: {v}"
        );
        v["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    fn snapshot(&self) -> Value {
        self.eval("return window.reclaimdLive ? window.reclaimdLive.snapshot() : null")
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().unwrap().to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call("GET", "/screenshot", None);
        let bytes = base64_decode(png.as_str().unwrap());
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("live-view");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = TcpStream::connect(self.addr).map(|_| {
            http(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            )
        });
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The lanes of the page's first instance: (group, computeUs, dbUs) per lane.
fn lanes(snapshot: &Value) -> Vec<(String, f64, f64)> {
    snapshot["instances"][0]["lanes"]
        .as_array()
        .map(|lanes| {
            lanes
                .iter()
                .map(|l| {
                    (
                        l["group"].as_str().unwrap().to_string(),
                        l["computeUs"].as_f64().unwrap(),
                        l["dbUs"].as_f64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[cfg_attr(
    any(no_chromium, no_chromedriver),
    ignore = "chromium or chromedriver not found at build time: apt-get install chromium chromium-driver"
)]
fn the_page_shows_a_lane_per_thread_their_segments_and_a_mode_flip_in_a_real_browser() {
    let app = TestApp::start(20, |c| {
        c.mode = Mode::Sync;
        c.sync.workers = 2;
        c.async_.worker_threads = 1;
        c.admin.token = "s3cret-token".into();
        c.workload.report_compute_ms = 3.0;
    });
    let load = Load::start(vec![app.url("")], 80.0, "report=2,user=1");
    let browser = Browser::start();
    browser.open(&app.admin_url("/live"));

    // A lane for each worker thread: 2 sync pool threads and 1 async runtime thread.
    let snap = eventually(
        "the page connects and lays out its lanes",
        Duration::from_secs(30),
        || {
            let s = browser.snapshot();
            if s["connected"] == true && lanes(&s).len() == 3 {
                Ok(s)
            } else {
                Err(s)
            }
        },
    );
    assert_eq!(snap["instances"].as_array().unwrap().len(), 1);
    assert_eq!(snap["instances"][0]["mode"], "sync");
    let labels = browser.eval(
        "return [...document.querySelectorAll('.lane-label.lane')].map(e => e.dataset.group + '-' + e.dataset.index)",
    );
    assert_eq!(labels, json!(["sync-0", "sync-1", "async-0"]));
    assert_eq!(
        browser.eval("return document.querySelector('.instance').dataset.mode"),
        "sync"
    );

    // Compute and DB segments arrive on the sync lanes; the async lane stays idle.
    eventually(
        "both sync lanes compute and block",
        Duration::from_secs(20),
        || {
            let l = lanes(&browser.snapshot());
            let ok = l
                .iter()
                .filter(|(g, c, d)| g == "sync" && *c > 0.0 && *d > *c)
                .count()
                == 2;
            if ok {
                Ok(())
            } else {
                Err(l)
            }
        },
    );
    // Let the window fill for the picture (the assertions above are already met).
    std::thread::sleep(Duration::from_secs(6));
    let l = lanes(&browser.snapshot());
    assert_eq!(l[2].1, 0.0, "the async lane idles in sync mode: {l:?}");
    let headline = browser.eval("return document.querySelector('.headline .blocked').textContent");
    assert!(headline.as_str().unwrap().ends_with('%'), "{headline}");
    let sync_png = browser.screenshot("sync.png");

    // Flip through the page's own control: the token typed, PUT /admin/mode.
    browser.type_into(".instance .token", "s3cret-token");
    browser.click(".instance .flip-button");
    let clicked = Instant::now();
    eventually(
        "the page shows async within 2 s",
        Duration::from_secs(2),
        || {
            let mode = browser.eval(
                "return [window.reclaimdLive.snapshot().instances[0].mode, \
             document.querySelector('.instance').dataset.mode, \
             document.querySelector('.instance .mode-badge').textContent]",
            );
            if mode == json!(["async", "async", "async"]) {
                Ok(())
            } else {
                Err(mode)
            }
        },
    );
    let reflected = clicked.elapsed();
    assert_eq!(app.server().app.mode(), Mode::Async, "the daemon flipped");
    let before = lanes(&browser.snapshot())[2].1;
    eventually("the async lane computes", Duration::from_secs(20), || {
        let l = lanes(&browser.snapshot());
        if l[2].1 > before + 50_000.0 && l[2].2 == 0.0 {
            Ok(())
        } else {
            Err(l)
        }
    });
    std::thread::sleep(Duration::from_secs(6));
    let async_png = browser.screenshot("async.png");
    let note = browser.eval("return document.querySelector('.instance .flip-note').textContent");
    assert!(note.as_str().unwrap().contains("async"), "{note}");
    let report = load.stop();
    assert!(report.targets[0].ok > 500, "{:?}", report.targets[0]);
    eprintln!(
        "mode flip reflected in {reflected:?}; screenshots: {} {}",
        sync_png.display(),
        async_png.display()
    );

    // Without a token the control is disabled, with a note saying why.
    let tokenless = TestApp::start(2, |_| {});
    browser.open(&tokenless.admin_url("/live"));
    let state = eventually("the control is laid out", Duration::from_secs(20), || {
        let v = browser.eval(
            "const b = document.querySelector('.instance .flip-button'); \
             return b ? [b.disabled, document.querySelector('.instance .flip-note').textContent] : null",
        );
        if v.is_null() {
            Err(v)
        } else {
            Ok(v)
        }
    });
    assert_eq!(state[0], true, "{state}");
    assert!(
        state[1].as_str().unwrap().contains("admin.token"),
        "{state}"
    );
}
