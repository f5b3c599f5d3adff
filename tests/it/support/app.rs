//! `TestApp`: the daemon in-process against a seeded mongo-wire, and an HTTP client.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mongo_wire::MongoWire;
use reclaimd::api::Mode;
use reclaimd::config::{Config, Overrides, Source};
use reclaimd::serve::Server;
use reclaimd::server_timing::ServerTiming;

use super::temp::TempPath;
use super::wire::{base_config, start_wire};

/// One HTTP response, decoded.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

impl Resp {
    pub fn timing(&self) -> ServerTiming {
        let h = self
            .headers
            .get("server-timing")
            .expect("every app response carries Server-Timing")
            .to_str()
            .expect("ascii header");
        ServerTiming::parse(h).expect("valid Server-Timing")
    }

    pub fn mode(&self) -> Mode {
        self.timing().mode.expect("Server-Timing names the mode")
    }
}

/// A daemon (in-process) + mongo-wire + an HTTP client runtime.
pub struct TestApp {
    pub server: Option<Server>,
    pub wire: MongoWire,
    pub rt: tokio::runtime::Runtime,
    pub client: Client<HttpConnector, Full<Bytes>>,
    /// The watched config file, for `start_with_file`.
    config_file: Option<TempPath>,
}

impl TestApp {
    /// Starts mongo-wire with `latency_ms` per data command, seeds it, and starts a daemon
    /// whose config `configure` adjusts.
    pub fn start(latency_ms: u64, configure: impl FnOnce(&mut Config)) -> TestApp {
        let wire = start_wire(latency_ms);
        let mut config = base_config(&wire);
        configure(&mut config);
        Self::with(wire, config, None)
    }

    /// Like `start`, but the config comes from a TOML file (watched for changes) written
    /// with `toml`; the listeners and MongoDB URI are set through CLI-level overrides and
    /// environment so the file can be edited freely by the test.
    pub fn start_with_file(latency_ms: u64, toml: &str) -> TestApp {
        let file = TempPath::new("config.toml");
        std::fs::write(file.path(), toml).unwrap();
        let mut app = Self::start_with_config_at(latency_ms, file.path());
        app.config_file = Some(file);
        app
    }

    /// Like `start_with_file`, with the config file at `path`, which the caller owns.
    pub fn start_with_config_at(latency_ms: u64, path: &Path) -> TestApp {
        let wire = start_wire(latency_ms);
        let overrides = Overrides {
            mode: None,
            listen: Some("127.0.0.1:0".parse().unwrap()),
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            mongodb_uri: None,
        };
        let mut source = Source::new(Some(path), overrides);
        source.env = [
            ("RECLAIMD_MONGODB__URI".to_string(), wire.uri()),
            (
                "RECLAIMD_MONGODB__SERVER_SELECTION_TIMEOUT".to_string(),
                "500ms".to_string(),
            ),
            ("RECLAIMD_TELEMETRY__SPANS".to_string(), "false".to_string()),
        ]
        .into();
        let config = source.load().expect("valid test config");
        Self::with(wire, config, Some(source))
    }

    fn with(wire: MongoWire, config: Config, source: Option<Source>) -> TestApp {
        let server = Server::start(config, source).expect("daemon starts");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let client = {
            let _g = rt.enter();
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(256)
                .build(connector)
        };
        TestApp {
            server: Some(server),
            wire,
            rt,
            client,
            config_file: None,
        }
    }

    /// The config file of an app started with `start_with_file`.
    pub fn config_path(&self) -> &Path {
        self.config_file
            .as_ref()
            .expect("started with start_with_file")
            .path()
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server().app_addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server().admin_addr)
    }

    /// Sends one request and decodes the response.
    pub async fn send(
        client: Client<HttpConnector, Full<Bytes>>,
        method: Method,
        url: String,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
            .await
            .expect("no hung connection")
            .expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    /// Waits until a GET of `path` is answered 200 (`what` names it in the failure), polling
    /// for at most `within`.
    pub fn served_again(&self, what: &str, path: &str, within: Duration) {
        super::eventually(what, within, || {
            let r = self.get(path);
            if r.status == 200 {
                Ok(())
            } else {
                Err(Box::new(r))
            }
        });
    }

    pub fn get(&self, path: &str) -> Resp {
        self.rt.block_on(Self::send(
            self.client.clone(),
            Method::GET,
            self.url(path),
            vec![],
            vec![],
        ))
    }

    pub fn post(&self, path: &str, body: &str) -> Resp {
        self.rt.block_on(Self::send(
            self.client.clone(),
            Method::POST,
            self.url(path),
            vec![("content-type", "application/json".into())],
            body.as_bytes().to_vec(),
        ))
    }

    pub fn admin(
        &self,
        method: Method,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: &str,
    ) -> Resp {
        self.rt.block_on(Self::send(
            self.client.clone(),
            method,
            self.admin_url(path),
            headers,
            body.as_bytes().to_vec(),
        ))
    }

    /// `n` requests at once, two reports to one user lookup (users 1..=50): the mix the
    /// measurement and headline tests drive.
    pub fn report_load(&self, n: usize) -> Vec<Resp> {
        self.concurrent(n, |i| {
            if i % 3 == 2 {
                format!("/api/users/{}", i % 50 + 1)
            } else {
                format!("/api/users/{}/report", i % 50 + 1)
            }
        })
    }

    /// Sends `n` GETs of `path(i)` at once and returns the responses in order.
    pub fn concurrent(&self, n: usize, path: impl Fn(usize) -> String) -> Vec<Resp> {
        let futures: Vec<_> = (0..n)
            .map(|i| {
                Self::send(
                    self.client.clone(),
                    Method::GET,
                    self.url(&path(i)),
                    vec![],
                    vec![],
                )
            })
            .collect();
        self.rt.block_on(async {
            let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.unwrap());
            }
            out
        })
    }

    /// The admin `/metrics` text.
    pub fn metrics_text(&self) -> String {
        let url = self.admin_url("/metrics");
        let client = self.client.clone();
        self.rt.block_on(async move {
            let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
            let resp = client.request(req).await.unwrap();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8(bytes.to_vec()).unwrap()
        })
    }

    /// The value of one sample in `/metrics`, e.g. `metric(r#"reclaimd_mode{mode="sync"}"#)`.
    pub fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.metrics_text(), sample)
    }
}

/// Finds a sample by its exact name-and-labels text; 0 when absent.
pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
    }
}
