//! The upstream side of the proxy against a scripted upstream: response framing, connection
//! reuse, connections the upstream dropped while idle, and broken answers.

use portico_testkit::scripted::{Reply, ScriptedUpstream};
use portico_testkit::*;

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// A gateway with one keyless API at `/up` in front of `upstream`.
async fn gateway_for(upstream: &ScriptedUpstream) -> RunningGateway {
    let mut open = api("up", "/up", &upstream.url(), vec![]);
    open.auth = portico_core::api::ApiAuth::Keyless;
    start_gateway(&config(vec![open], vec![])).await
}

async fn body_of(gw: &RunningGateway, path: &str) -> (u16, String) {
    let r = get(&gw.url(path), None).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn connections_are_reused_across_framings() {
    let up = ScriptedUpstream::start(vec![vec![
        Reply::Send(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5;x=y\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n",
        ),
        Reply::Send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc"),
        Reply::Send("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-Up: 1\r\n\r\n"),
        Reply::Send("HTTP/1.1 204 No Content\r\n\r\n"),
        Reply::Send(OK),
    ]])
    .await;
    let gw = gateway_for(&up).await;
    assert_eq!(body_of(&gw, "/up/a").await, (200, "hello world".into()));
    // 1xx heads are skipped.
    assert_eq!(body_of(&gw, "/up/b").await, (201, "abc".into()));
    // HEAD: the length is the upstream's; no body is expected on the connection.
    let head = client().head(gw.url("/up/c")).send().await.unwrap();
    assert_eq!(head.headers()["content-length"], "1234");
    assert_eq!(head.headers()["x-up"], "1");
    assert_eq!(body_of(&gw, "/up/d").await, (204, String::new()));
    assert_eq!(body_of(&gw, "/up/e").await, (200, "ok".into()));
    assert_eq!(up.connections(), 1, "every request used the one connection");
    assert!(up.requests()[2].starts_with("HEAD /c HTTP/1.1\r\n"));
}

#[tokio::test]
async fn a_body_until_close_is_read_whole_and_its_connection_not_reused() {
    let up = ScriptedUpstream::start(vec![
        vec![Reply::SendAndClose("HTTP/1.0 200 OK\r\n\r\nall of it")],
        vec![Reply::Send(OK)],
    ])
    .await;
    let gw = gateway_for(&up).await;
    assert_eq!(body_of(&gw, "/up/a").await, (200, "all of it".into()));
    assert_eq!(body_of(&gw, "/up/b").await, (200, "ok".into()));
    assert_eq!(up.connections(), 2);
}

#[tokio::test]
async fn a_request_on_a_connection_the_upstream_dropped_is_sent_again_when_safe() {
    // The upstream reads the second request and closes without a word, as a server whose
    // keep-alive timer fired at that moment does.
    let up = ScriptedUpstream::start(vec![
        vec![Reply::Send(OK), Reply::Close],
        vec![Reply::Send(OK), Reply::Close],
        vec![Reply::Send(OK)],
    ])
    .await;
    let gw = gateway_for(&up).await;
    assert_eq!(body_of(&gw, "/up/1").await, (200, "ok".into()));
    assert_eq!(body_of(&gw, "/up/2").await, (200, "ok".into()));
    assert_eq!(
        up.connections(),
        2,
        "the GET was replayed on a new connection"
    );
    assert_eq!(up.requests().len(), 3);

    // A POST is not idempotent: it is not replayed.
    let r = client()
        .post(gw.url("/up/3"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(up.connections(), 2);
}

#[tokio::test]
async fn broken_answers_are_bad_gateway() {
    let broken = [
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nok",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Cut",
    ];
    let up = ScriptedUpstream::start(
        broken
            .iter()
            .map(|b| vec![Reply::SendAndClose(b)])
            .collect(),
    )
    .await;
    let gw = gateway_for(&up).await;
    for answer in broken {
        let r = get(&gw.url("/up/x"), None).await;
        assert_eq!(r.status(), 502, "{answer:?}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn a_body_cut_short_fails_the_client_response() {
    let up = ScriptedUpstream::start(vec![vec![Reply::SendAndClose(
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
    )]])
    .await;
    let gw = gateway_for(&up).await;
    // The connection to the client is cut: before the head when it was not sent yet, else
    // mid-body. Either way the client never sees a complete response.
    let complete = match client().get(gw.url("/up/x")).send().await {
        Ok(r) => r.bytes().await.is_ok(),
        Err(_) => false,
    };
    assert!(!complete);
}

#[tokio::test]
async fn request_bodies_are_framed_for_the_upstream() {
    let up = ScriptedUpstream::start(vec![vec![Reply::Send(OK), Reply::Send(OK)]]).await;
    let gw = gateway_for(&up).await;
    // HTTP/1.1 with a length: sent as it is.
    let r = client()
        .post(gw.url("/up/len"))
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // HTTP/2 without a length: sent chunked.
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let pieces: Vec<Result<&'static str, std::io::Error>> = vec![Ok("hello "), Ok("world")];
    let r = h2
        .post(gw.url("/up/chunked"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let requests = up.requests();
    assert!(requests[0].starts_with("POST /len HTTP/1.1\r\n"));
    assert!(requests[0].contains("content-length: 3\r\n"));
    assert!(requests[0].ends_with("\r\n\r\nabc"));
    assert!(requests[1].contains("transfer-encoding: chunked\r\n"));
    let body = &requests[1][requests[1].find("\r\n\r\n").unwrap() + 4..];
    let decoded: String = body
        .split("\r\n")
        .collect::<Vec<_>>()
        .chunks(2)
        .filter_map(|pair| pair.get(1).copied())
        .collect();
    assert_eq!(decoded, "hello world");
    assert!(body.ends_with("0\r\n\r\n"));
}

/// A request body streamed in `chunks` pieces of `size` bytes, `gap` apart.
fn slow_body(chunks: usize, size: usize, gap: std::time::Duration) -> reqwest::Body {
    let stream = futures_util::stream::unfold(0, move |i| async move {
        if i == chunks {
            return None;
        }
        tokio::time::sleep(gap).await;
        Some((Ok::<_, std::io::Error>(vec![b'x'; size]), i + 1))
    });
    reqwest::Body::wrap_stream(stream)
}

fn keyless(id: &str, upstream: &str) -> portico_core::ApiSpec {
    let mut open = api(id, &format!("/{id}"), upstream, vec![]);
    open.auth = portico_core::api::ApiAuth::Keyless;
    open
}

#[tokio::test]
async fn an_upload_longer_than_the_response_timeout_is_fine() {
    let up = Upstream::start().await;
    let mut open = keyless("up", &up.url());
    open.timeouts.read_ms = 300;
    let gw = start_gateway(&config(vec![open], vec![])).await;
    let r = client()
        .post(gw.url("/up/upload"))
        .body(slow_body(6, 1000, std::time::Duration::from_millis(150)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the response timeout starts after the body"
    );
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["body_len"], 6000);
}

#[tokio::test]
async fn an_early_answer_is_relayed_not_lost() {
    let up = ScriptedUpstream::start(vec![vec![Reply::AnswerHeadAndClose(
        "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!",
    )]])
    .await;
    let gw = gateway_for(&up).await;
    let r = client()
        .post(gw.url("/up/upload"))
        .body(slow_body(
            200,
            64 * 1024,
            std::time::Duration::from_millis(2),
        ))
        .send()
        .await;
    // The gateway answers before the client is done sending; the client may see the answer
    // or, having been cut off mid-upload, a reset. It must never see a 502.
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
        assert_eq!(r.text().await.unwrap_or_default(), "too big!");
    }
    assert!(
        !gw.metrics().await.contains("status=\"502\""),
        "the upstream's answer was turned into a 502"
    );
    assert!(gw.metrics().await.contains("status=\"413\""));
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_gets_408() {
    let up = Upstream::start().await;
    let mut open = keyless("up", &up.url());
    open.timeouts.send_idle_ms = 200;
    let gw = start_gateway(&config(vec![open], vec![])).await;
    let r = client()
        .post(gw.url("/up/upload"))
        .body(slow_body(2, 10, std::time::Duration::from_millis(600)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 408);
}

#[tokio::test]
async fn a_full_upstream_gets_503_with_retry_after() {
    let up = Upstream::start().await;
    let mut open = keyless("up", &up.url());
    open.connections.max_active = 1;
    open.connections.queue_ms = 50;
    let gw = start_gateway(&config(vec![open], vec![])).await;
    let slow = tokio::spawn({
        let url = gw.url("/up/slow");
        async move { get(&url, None).await.status() }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = get(&gw.url("/up/x"), None).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(
        get(&gw.url("/up/x"), None).await.status(),
        200,
        "the slot is free again"
    );
}

#[tokio::test]
async fn a_stalled_response_body_is_cut_off() {
    let up = ScriptedUpstream::start(vec![vec![Reply::SendAndStall(
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial",
    )]])
    .await;
    let mut open = keyless("up", &up.url());
    open.timeouts.body_idle_ms = 300;
    let gw = start_gateway(&config(vec![open], vec![])).await;
    let started = std::time::Instant::now();
    let r = get(&gw.url("/up/x"), None).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.bytes().await.is_err(),
        "a body cut short never looks complete"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn an_early_success_lets_the_upload_finish() {
    let up = ScriptedUpstream::start(vec![vec![
        Reply::AnswerHeadThenRead("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        Reply::Send(OK),
    ]])
    .await;
    let gw = gateway_for(&up).await;
    let r = client()
        .post(gw.url("/up/upload"))
        .body(slow_body(5, 1000, std::time::Duration::from_millis(50)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
    // The whole body reached the upstream, and the connection stayed usable.
    assert_eq!(body_of(&gw, "/up/next").await, (200, "ok".into()));
    let requests = up.requests();
    assert!(
        requests[0].contains(&"x".repeat(1000)) && requests[0].len() > 5000,
        "{}",
        requests[0].len()
    );
    assert_eq!(up.connections(), 1);
}
