//! The server (`api::serve`) against hostile clients and a hung ClickHouse, over real TCP:
//! idle and half-sent connections, the connection cap, request heads beyond the limits, junk
//! methods, bounded metric labels, the separate metrics listener, a ClickHouse that accepts
//! connections and never answers, and graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use auditlog_query::api::serve::{self, Limits};
use auditlog_query::api::{app, metrics_app, AppState};
use auditlog_query::ApiConfig;
use axum::Router;
use common::{Harness, ADMIN};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A library server on a free port, stopped (gracefully) by [`Server::stop`].
struct Server {
    addr: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(app: Router, limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(serve::serve(listener, app, limits, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        Self { addr, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
    }
}

fn limits(header: u64, idle: u64, max: usize) -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(header),
        idle_timeout: Duration::from_millis(idle),
        max_connections: max,
        ..Limits::from_config(&ApiConfig::default())
    }
}

/// One parsed HTTP/1.1 response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "{}: not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Reads one response (heads with `Content-Length`, or a body up to the close).
async fn read_response(s: &mut TcpStream) -> std::io::Result<Resp> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut body = buf[head_end..].to_vec();
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>().unwrap());
    match len {
        Some(len) => {
            while body.len() < len {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        None => {
            s.read_to_end(&mut body).await?;
        }
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// Sends raw bytes on a new connection and reads one response.
async fn exchange(addr: &str, raw: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    read_response(&mut s).await.unwrap()
}

async fn get(addr: &str, path: &str, token: Option<&str>) -> Resp {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n");
    exchange(addr, raw.as_bytes()).await
}

/// Waits until the server closes `s` (EOF or reset); returns when.
async fn closed(mut s: TcpStream) -> Instant {
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return Instant::now(),
            Ok(_) => {}
        }
    }
}

/// `name{labels} value` of the Prometheus text, as a number.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Connections the server has accepted so far (this process's metrics).
fn accepted() -> f64 {
    let text =
        auditlog_testkit::prometheus(auditlog_query::api::metrics::HISTOGRAM_BUCKETS).render();
    sample(
        &text,
        "auditlog_api_connections_accepted_total{listener=\"api\"}",
    )
    .unwrap_or(0.0)
}

/// `n` connections, each with the instant its handshake completed. In rounds, each waiting
/// until the server has accepted it: a client faster than the accept loop would overflow the
/// kernel's accept queue, which drops connections the client believes open.
async fn connect_many(addr: &str, n: usize) -> Vec<(TcpStream, Instant)> {
    let mut out = Vec::with_capacity(n);
    let base = accepted();
    while out.len() < n {
        let k = 200.min(n - out.len());
        let conns = futures::future::join_all((0..k).map(|_| async {
            let s = TcpStream::connect(addr).await.expect("connect");
            (s, Instant::now())
        }))
        .await;
        out.extend(conns);
        let t = Instant::now();
        while accepted() < base + out.len() as f64 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the server stopped accepting"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    out
}

// ---- connection exhaustion ------------------------------------------------------------------

/// What a held connection does before it waits for the server to close it.
#[derive(Clone, Copy)]
enum Hold {
    /// Nothing: connected, never a byte.
    Idle,
    /// The first bytes of a request head, never the blank line.
    HalfSent,
    /// One complete request, its response read, then nothing.
    KeepAlive,
}

/// `n` connections doing `hold`, each watched by a task returning how long after it went quiet
/// the server closed it. Opened in rounds, each waiting until the server has accepted it
/// (a client faster than the accept loop overflows the kernel's accept queue, which drops
/// connections the client believes open).
async fn hold_many(addr: &str, n: usize, hold: Hold) -> Vec<JoinHandle<Duration>> {
    let mut tasks = Vec::with_capacity(n);
    let base = accepted();
    while tasks.len() < n {
        let k = 200.min(n - tasks.len());
        for _ in 0..k {
            let addr = addr.to_owned();
            tasks.push(tokio::spawn(async move {
                let mut s = TcpStream::connect(&addr).await.expect("connect");
                match hold {
                    Hold::Idle => {}
                    Hold::HalfSent => s
                        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ")
                        .await
                        .unwrap(),
                    Hold::KeepAlive => {
                        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
                            .await
                            .unwrap();
                        assert_eq!(read_response(&mut s).await.unwrap().status, 200);
                    }
                }
                let since = Instant::now();
                closed(s).await - since
            }));
        }
        let t = Instant::now();
        while accepted() < base + tasks.len() as f64 {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the server stopped accepting"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_neither_block_nor_linger() {
    let nofile = serve::raise_nofile_limit().unwrap();
    const IDLE: usize = 3000;
    const HALF: usize = 200;
    const KEEPALIVE: usize = 20;
    assert!(
        nofile > 2 * (IDLE + HALF + KEEPALIVE) as u64 + 500,
        "ulimit -n: {nofile}"
    );
    let h = Harness::new("q_idle").await;
    let header = Duration::from_secs(3);
    let idle = Duration::from_secs(12);
    let srv = Server::start(
        h.app.clone(),
        limits(header.as_millis() as u64, idle.as_millis() as u64, 4096),
    )
    .await;
    let opening = Instant::now();
    let idle_t = hold_many(&srv.addr, IDLE, Hold::Idle).await;
    let kept_t = hold_many(&srv.addr, KEEPALIVE, Hold::KeepAlive).await;
    let half_t = hold_many(&srv.addr, HALF, Hold::HalfSent).await;
    let opened = opening.elapsed();

    // With all of them held, /health answers at once.
    let t = Instant::now();
    let r = get(&srv.addr, "/health", None).await;
    let took = t.elapsed();
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["clickhouse"], "ok");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let text =
        auditlog_testkit::prometheus(auditlog_query::api::metrics::HISTOGRAM_BUCKETS).render();
    let open = sample(&text, "auditlog_api_connections_open{listener=\"api\"}").unwrap();
    assert!(
        opened < idle && open >= (IDLE + KEEPALIVE) as f64,
        "opened in {opened:?}, {open} open"
    );

    let slack = Duration::from_secs(4);
    for (name, tasks, limit, early) in [
        ("idle", idle_t, idle, 50),
        ("half-sent", half_t, header, 50),
        ("keep-alive", kept_t, idle, 500),
    ] {
        let deadline = tokio::time::Instant::now() + limit + slack + Duration::from_secs(5);
        let lived = futures::future::join_all(
            tasks
                .into_iter()
                .map(|t| tokio::time::timeout_at(deadline, t)),
        )
        .await;
        let open = lived.iter().filter(|r| r.is_err()).count();
        assert_eq!(open, 0, "{name} connections still open");
        for d in lived {
            let d = d.unwrap().unwrap();
            assert!(
                d >= limit - Duration::from_millis(early) && d <= limit + slack,
                "{name} connection closed after {d:?}, timeout {limit:?}"
            );
        }
    }
    let text = String::from_utf8(get(&srv.addr, "/metrics", None).await.body).unwrap();
    let closed = |reason: &str| {
        sample(
            &text,
            &format!(
                "auditlog_api_connections_closed_total{{listener=\"api\",reason=\"{reason}\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    // Every connection's lifetime is asserted above. How each close is counted is racy under
    // heavy load: hyper may end a keep-alive connection itself an instant before the idle timer
    // fires (counted `closed`, seen once in 3020 on a loaded 2-core CI machine). Allow 1 % of
    // those, never a connection that is not counted at all.
    let expected = (IDLE + KEEPALIVE) as f64;
    assert!(
        closed("idle_timeout") >= expected * 0.99
            && closed("idle_timeout") + closed("closed") >= expected,
        "{text}"
    );
    assert!(closed("header_timeout") >= HALF as f64, "{text}");
    // Only the /metrics request itself is still open.
    assert_eq!(
        sample(&text, "auditlog_api_connections_open{listener=\"api\"}"),
        Some(1.0),
        "{text}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn at_the_cap_new_connections_wait_and_open_ones_keep_working() {
    let h = Harness::new("q_cap").await;
    let srv = Server::start(h.app.clone(), limits(10_000, 2_000, 10)).await;
    let started = Instant::now();
    let mut conns = connect_many(&srv.addr, 10).await;
    let (mut a, _) = conns.remove(0);
    let live = b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n";
    a.write_all(live).await.unwrap();
    assert_eq!(read_response(&mut a).await.unwrap().status, 200);
    // The eleventh connection waits in the backlog: its request is not answered yet.
    let mut b = TcpStream::connect(&srv.addr).await.unwrap();
    b.write_all(live).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(700), read_response(&mut b)).await;
    assert!(waiting.is_err(), "answered beyond the cap: {waiting:?}");
    // An open connection keeps working meanwhile.
    a.write_all(live).await.unwrap();
    let t = Instant::now();
    assert_eq!(read_response(&mut a).await.unwrap().status, 200);
    assert!(t.elapsed() < Duration::from_millis(500));
    // Once the idle ones time out, the waiting connection is served.
    let r = tokio::time::timeout(Duration::from_secs(8), read_response(&mut b))
        .await
        .expect("served once a slot frees")
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(1900));
    drop(conns);
    srv.stop().await;
}

// ---- request heads, methods, metric labels --------------------------------------------------

#[tokio::test]
async fn heads_beyond_the_limits_and_junk_methods_get_json_errors_and_bounded_metrics() {
    let h = Harness::new("q_heads").await;
    let srv = Server::start(h.app.clone(), limits(10_000, 10_000, 100)).await;
    let req = |method: &str, path: &str, extra: &str| {
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n")
    };
    // More header fields than documented (but fewer than the parser's hard limit).
    let many: String = (0..150).map(|i| format!("X-F{i}: v\r\n")).collect();
    let r = exchange(&srv.addr, req("GET", "/v1/events", &many).as_bytes()).await;
    assert_eq!(r.status, 431);
    assert_eq!(r.json()["error"]["code"], "headers_too_large");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.starts_with("headers:") && msg.contains("100"), "{msg}");
    // A head larger than documented (40 KiB): JSON 431 too.
    let big = format!("Cookie: {}\r\n", "c".repeat(40 * 1024));
    for path in ["/v1/events", "/", "/health"] {
        let r = exchange(&srv.addr, req("GET", path, &big).as_bytes()).await;
        assert_eq!(r.status, 431, "{path}");
        assert_eq!(r.json()["error"]["code"], "headers_too_large", "{path}");
    }
    // Within the limits: served.
    let fine: String = (0..90).map(|i| format!("X-F{i}: v\r\n")).collect();
    let r = exchange(&srv.addr, req("GET", "/health/live", &fine).as_bytes()).await;
    assert_eq!(r.status, 200);
    // Beyond the parser's own limit (100 KiB) hyper answers a bare 431 and closes (the close
    // can reset the connection before the client reads the answer).
    let huge = format!("Cookie: {}\r\n", "c".repeat(100 * 1024));
    let mut s = TcpStream::connect(&srv.addr).await.unwrap();
    let _ = s.write_all(req("GET", "/health", &huge).as_bytes()).await;
    if let Ok(r) = read_response(&mut s).await {
        assert_eq!(r.status, 431);
    }
    // The server is unharmed.
    assert_eq!(get(&srv.addr, "/health/live", None).await.status, 200);

    // Junk methods: JSON 405 on a route (API or dashboard), JSON 404 elsewhere.
    for (path, status, code) in [
        ("/v1/events", 405, "method_not_allowed"),
        ("/", 405, "method_not_allowed"),
        ("/health/ready", 405, "method_not_allowed"),
        ("/nope", 404, "not_found"),
    ] {
        let r = exchange(&srv.addr, req("BREW", path, "").as_bytes()).await;
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}"
        );
    }
    // 300 requests with made-up methods add no series per method.
    for i in 0..300 {
        let r = exchange(
            &srv.addr,
            req(&format!("M{i}X"), "/v1/events", "").as_bytes(),
        )
        .await;
        assert_eq!(r.status, 405);
    }
    let text = String::from_utf8(get(&srv.addr, "/metrics", None).await.body).unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("auditlog_api_requests_total{"))
        .collect();
    assert!(series.len() < 20, "{series:#?}");
    assert!(!text.contains("method=\"M1X\"") && !text.contains("method=\"BREW\""));
    assert_eq!(
        sample(
            &text,
            "auditlog_api_requests_total{route=\"/v1/events\",method=\"other\",status=\"405\"}"
        ),
        Some(301.0),
        "{text}"
    );
    assert!(text.contains("route=\"unmatched\",method=\"other\",status=\"404\""));
    // Every API metric has its help text.
    for m in [
        "auditlog_api_requests_total",
        "auditlog_api_request_duration_seconds",
        "auditlog_api_connections_open",
        "auditlog_api_connections_max",
        "auditlog_api_connections_accepted_total",
        "auditlog_api_connections_closed_total",
    ] {
        assert!(text.contains(&format!("# HELP {m} ")), "{m}: {text}");
    }
    assert_eq!(
        sample(&text, "auditlog_api_connections_max{listener=\"api\"}"),
        Some(100.0)
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_stalled_request_body_fails_after_the_idle_timeout() {
    let h = Harness::new("q_body").await;
    let srv = Server::start(h.app.clone(), limits(10_000, 1_000, 100)).await;
    let mut s = TcpStream::connect(&srv.addr).await.unwrap();
    let head = format!(
        "PUT /v1/admin/workspaces/ws/plan HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"plan\":"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(6), read_response(&mut s))
        .await
        .expect("answered")
        .unwrap();
    let took = t.elapsed();
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("body"));
    assert!(took >= Duration::from_millis(950), "{took:?}");
    srv.stop().await;
}

#[tokio::test]
async fn metrics_listen_moves_metrics_to_their_own_listener() {
    let ch = auditlog_testkit::fresh_database("q_mlisten").await.unwrap();
    let cfg = ApiConfig {
        metrics_listen: "127.0.0.1:1".into(),
        ..ApiConfig::default()
    };
    let state = AppState::new(
        &cfg,
        ch.client(),
        auditlog_testkit::prometheus(auditlog_query::api::metrics::HISTOGRAM_BUCKETS),
    );
    let metrics = Server::start(metrics_app(&state), Limits::metrics_listener(&cfg)).await;
    let main = Server::start(app(state), Limits::from_config(&cfg)).await;
    let r = get(&main.addr, "/metrics", None).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    assert_eq!(get(&main.addr, "/health/live", None).await.status, 200);
    let r = get(&metrics.addr, "/metrics", None).await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains("route=\"unmatched\",method=\"GET\",status=\"404\""),
        "{text}"
    );
    assert!(
        text.contains("auditlog_api_connections_max{listener=\"metrics\"} 32"),
        "{text}"
    );
    // Only /metrics there.
    assert_eq!(get(&metrics.addr, "/health", None).await.status, 404);
    main.stop().await;
    metrics.stop().await;
}

// ---- a hung ClickHouse ----------------------------------------------------------------------

/// A TCP listener that accepts every connection and never answers (a stalled server or a
/// network black hole).
async fn black_hole() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    format!("http://{addr}")
}

fn hung_app(url: String, query_timeout: Duration) -> Router {
    let ch = auditlog_store::ClickHouseConfig {
        url,
        ..Default::default()
    };
    let cfg = ApiConfig {
        admin_token: ADMIN.into(),
        query_timeout,
        ..ApiConfig::default()
    };
    app(AppState::new(
        &cfg,
        ch.client(),
        auditlog_testkit::prometheus(auditlog_query::api::metrics::HISTOGRAM_BUCKETS),
    ))
}

#[tokio::test]
async fn a_clickhouse_that_never_answers_is_a_prompt_503() {
    let srv = Server::start(
        hung_app(black_hole().await, Duration::from_secs(2)),
        Limits::from_config(&ApiConfig::default()),
    )
    .await;
    let t = Instant::now();
    let r = get(&srv.addr, "/health/live", None).await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_millis(500));
    // Health: its own 1 s deadline.
    for path in ["/health", "/health/ready"] {
        let t = Instant::now();
        let r = get(&srv.addr, path, None).await;
        let took = t.elapsed();
        assert_eq!(r.status, 503, "{path}");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{path}: {took:?}"
        );
        assert_eq!(r.header("retry-after"), Some("5"), "{path}");
        let body = r.json();
        assert_eq!(body["error"]["code"], "unavailable", "{path}");
        let check = if path == "/health" {
            &body["clickhouse"]
        } else {
            &body["checks"]["clickhouse"]
        };
        assert_eq!(check, "timeout", "{path}: {body}");
    }
    // Reads, token verification and admin calls: the query deadline (2 s).
    let token = "alt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (path, tok) in [
        ("/v1/events", token),
        ("/v1/workspace", token),
        ("/v1/export?format=csv", token),
        ("/v1/admin/tokens", ADMIN),
        ("/v1/admin/workspaces/ws/plan", ADMIN),
    ] {
        let t = Instant::now();
        let r = get(&srv.addr, path, Some(tok)).await;
        let took = t.elapsed();
        assert_eq!(r.status, 503, "{path}");
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
            "{path}: {took:?}"
        );
        assert_eq!(r.header("retry-after"), Some("5"), "{path}");
        assert_eq!(r.json()["error"]["code"], "unavailable", "{path}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_stops_accepting() {
    let srv = Server::start(
        hung_app(black_hole().await, Duration::from_secs(2)),
        Limits::from_config(&ApiConfig::default()),
    )
    .await;
    let addr = srv.addr.clone();
    let idle = TcpStream::connect(&addr).await.unwrap();
    let in_flight = tokio::spawn({
        let addr = addr.clone();
        async move { get(&addr, "/v1/admin/tokens", Some(ADMIN)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let _ = srv.stop.send(true);
    // The idle connection is closed at once; the request in flight gets its answer.
    let closed_at = tokio::time::timeout(Duration::from_secs(1), closed(idle))
        .await
        .expect("idle connection closed on shutdown");
    assert!(closed_at - t < Duration::from_secs(1));
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 503);
    tokio::time::timeout(Duration::from_secs(5), srv.task)
        .await
        .expect("drained")
        .unwrap();
    assert!(TcpStream::connect(&addr).await.is_err(), "still accepting");
}
