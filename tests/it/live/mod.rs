//! The live view (`/live` on the admin listener) and `reclaimd demo`.
//!
//! - [`stream`]: the page and its assets, the Server-Sent Events stream under load in both
//!   modes, the viewer limit, the byte budget, a stalled viewer, read-only access.
//! - [`browser`]: the page in a real headless Chromium, driven over WebDriver.
//! - [`demo`]: `reclaimd demo` as a user runs it.
//!
//! Helpers here: an SSE reader over a raw TCP connection, and background open-loop load.

mod browser;
mod demo;
mod stream;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reclaimd::load::{Arrivals, LoadPlan, LoadReport, Mix, Progress};

/// A `GET /live/events` stream read over a raw TCP connection (chunked transfer decoded).
pub struct Sse {
    reader: BufReader<TcpStream>,
    pub status: u16,
    pub head: String,
    buf: String,
}

impl Sse {
    pub fn open(admin: SocketAddr) -> Sse {
        let mut s = TcpStream::connect(admin).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /live/events HTTP/1.1\r\nHost: {admin}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad response head: {head:?}"));
        Sse {
            reader,
            status,
            head,
            buf: String::new(),
        }
    }

    /// The next chunk of the body; `None` at its end.
    fn chunk(&mut self) -> Option<String> {
        let mut size = String::new();
        if self.reader.read_line(&mut size).ok()? == 0 {
            return None;
        }
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            return None;
        }
        let mut data = vec![0; n + 2];
        self.reader.read_exact(&mut data).ok()?;
        data.truncate(n);
        Some(String::from_utf8(data).expect("UTF-8 events"))
    }

    /// The next event's JSON; `None` when the stream ends.
    pub fn next(&mut self) -> Option<serde_json::Value> {
        self.next_sized().map(|(e, _)| e)
    }

    /// The next event's JSON and its size in the stream (`data: …\n\n`).
    fn next_sized(&mut self) -> Option<(serde_json::Value, usize)> {
        loop {
            if let Some(cut) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..cut + 2).collect();
                let data = event
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("an event is one data line: {event:?}"));
                let json = serde_json::from_str(data.trim_end()).expect("valid JSON");
                return Some((json, event.len()));
            }
            let chunk = self.chunk()?;
            self.buf.push_str(&chunk);
        }
    }

    /// Every event for `d`.
    pub fn collect_for(&mut self, d: Duration) -> Vec<serde_json::Value> {
        self.collect_sized_for(d)
            .into_iter()
            .map(|(e, _)| e)
            .collect()
    }

    /// Every event for `d`, each with its size in the stream.
    pub fn collect_sized_for(&mut self, d: Duration) -> Vec<(serde_json::Value, usize)> {
        let end = Instant::now() + d;
        let mut out = Vec::new();
        while Instant::now() < end {
            match self.next_sized() {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }
}

/// Open-loop load on `targets` in the background until [`Load::stop`].
pub struct Load {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: mpsc::Receiver<LoadReport>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    pub fn start(targets: Vec<String>, rate: f64, mix: &str) -> Load {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, done) = mpsc::channel();
        let plan = LoadPlan {
            targets,
            rate,
            duration: Some(Duration::from_secs(120)),
            arrivals: Arrivals::Poisson,
            mix: mix.parse::<Mix>().unwrap(),
            users: crate::support::wire::USERS,
            max_in_flight: 5000,
            timeout: Duration::from_secs(20),
            seed: 7,
        };
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let report = rt.block_on(reclaimd::load::run_load(
                plan,
                async {
                    let _ = stopped.await;
                },
                Progress::Off,
            ));
            let _ = tx.send(report);
        });
        Load {
            stop: Some(stop),
            done,
            thread: Some(thread),
        }
    }

    /// Stops sending, waits for the requests in flight, and returns the report.
    pub fn stop(mut self) -> LoadReport {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let report = self
            .done
            .recv_timeout(Duration::from_secs(60))
            .expect("the load stops");
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        report
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// The lane entries of `frames` for `group` (0 sync, 1 async): (lane index, c µs, d µs, n).
pub fn lane_totals(frames: &[serde_json::Value], group: u64) -> Vec<(u64, u64, u64, u64)> {
    let mut out: Vec<(u64, u64, u64, u64)> = Vec::new();
    for f in frames.iter().filter(|f| f["type"] == "frame") {
        for lane in f["lanes"].as_array().unwrap() {
            if lane[0] != group {
                continue;
            }
            let i = lane[1].as_u64().unwrap();
            let nums: Vec<i64> = lane[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_i64().unwrap())
                .collect();
            let (c, d, n) = nums.chunks(5).fold((0, 0, 0), |(c, d, n), e| {
                (c + e[1] as u64, d + e[2] as u64, n + e[4] as u64)
            });
            match out.iter_mut().find(|t| t.0 == i) {
                Some(t) => {
                    t.1 += c;
                    t.2 += d;
                    t.3 += n;
                }
                None => out.push((i, c, d, n)),
            }
        }
    }
    out.sort();
    out
}
