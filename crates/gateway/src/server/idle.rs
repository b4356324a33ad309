//! Closing connections that do no work. Each connection counts its requests in flight
//! ([`RequestActivity`]: a request starts when hyper calls the service, [`count_requests`], and
//! ends when its response body has ended or is dropped, [`CountedBody`], so a streamed response
//! is in flight until its last byte). [`serve_until_idle`] looks at the count a few times per
//! idle timeout and, once a whole timeout has passed with no request in flight and none started
//! or ended, shuts the connection down gracefully: still sniffing the protocol, it is closed; on
//! HTTP/1.1, closed; on HTTP/2, a GOAWAY, then closed once the client has acknowledged it, or
//! after the grace.
//!
//! Bytes are not work: a client's HTTP/2 PINGs, SETTINGS or preface do not keep a connection
//! open, and neither do the PING answers to the gateway's own keep-alive pings. A connection
//! that switched protocols (a `101`, WebSocket) is no longer served by hyper: its future ends
//! with the switch, this watch with it, and the tunnel's own rules apply (`proxy/upgrade.rs`).
//!
//! Cost per request: two relaxed atomic additions and a reference count; the clock is read and
//! the timer re-armed only when the timer fires, never per request or per read.

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::{Service, service_fn};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// How often per idle timeout a connection's count is looked at: a connection is closed
/// between one and 1¼ idle timeouts after its last request ended.
const LOOKS_PER_TIMEOUT: u32 = 4;

/// How long a connection may do no work, and how long a connection told to close may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleTimeouts {
    /// No request in flight and none started or ended for this long: shut down gracefully.
    pub idle: Duration,
    /// After the graceful shutdown, no request in flight for this long: dropped.
    pub close_grace: Duration,
}

/// The low 32 bits of a [`RequestActivity`] word count requests in flight.
const IN_FLIGHT_MASK: u64 = (1 << 32) - 1;
/// The high 32 bits count (wrapping) the requests that ended.
const ONE_ENDED: u64 = 1 << 32;

/// One connection's requests, in one atomic word: how many are in flight and how many have
/// ended. Every start and every end changes the word, so two equal looks mean that nothing
/// started or ended in between.
#[derive(Debug, Default)]
pub struct RequestActivity(AtomicU64);

impl RequestActivity {
    /// A request has started; it is in flight until the guard is dropped.
    fn start(self: &Arc<Self>) -> InFlight {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    fn look(&self) -> Activity {
        Activity(self.0.load(Ordering::Relaxed))
    }
}

/// A request in flight on its connection.
#[derive(Debug)]
pub struct InFlight(Arc<RequestActivity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // One fewer in flight and one more ended, in one step: adding 2^32 - 1 takes one from
        // the low half (at least one, this request) and carries one into the high half.
        self.0.0.fetch_add(ONE_ENDED - 1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Activity(u64);

impl Activity {
    fn in_flight(self) -> u64 {
        self.0 & IN_FLIGHT_MASK
    }
}

/// `service`, with each request counted on `activity` until its response body is done.
pub fn count_requests<S, B>(
    service: S,
    activity: Arc<RequestActivity>,
) -> impl Service<
    Request<Incoming>,
    Response = Response<CountedBody<B>>,
    Error = Infallible,
    Future: Send + 'static,
>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Unpin + Send + 'static,
{
    service_fn(move |req| {
        let in_flight = activity.start();
        // The inner call is made inside the future, so that its (large) future is built in
        // place when first polled: made here, it would be moved into this one and then into
        // hyper's slot (≈ 5 KB copied per request).
        let service = service.clone();
        async move {
            let Ok(response) = service.call(req).await;
            Ok(response.map(|body| CountedBody {
                body,
                in_flight: Some(in_flight),
            }))
        }
    })
}

/// A response body that keeps its request in flight until it has ended or is dropped.
#[derive(Debug)]
pub struct CountedBody<B> {
    body: B,
    in_flight: Option<InFlight>,
}

impl<B: Body + Unpin> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.in_flight = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// When a connection has done no work for a whole timeout, from what it is shown.
#[derive(Debug)]
struct IdleWatch {
    timeout: Duration,
    seen: Activity,
    /// The last look that found a request in flight or a change (or the start): the
    /// connection has done nothing since then at the latest.
    active_at: Instant,
}

impl IdleWatch {
    fn new(timeout: Duration, seen: Activity, now: Instant) -> Self {
        Self {
            timeout,
            seen,
            active_at: now,
        }
    }

    fn first_look(&self) -> Instant {
        self.active_at + self.timeout / LOOKS_PER_TIMEOUT
    }

    /// At `now`, seeing `activity`: `None` when the connection has done nothing for the whole
    /// timeout, else when to look next.
    fn look(&mut self, activity: Activity, now: Instant) -> Option<Instant> {
        if activity != self.seen || activity.in_flight() > 0 {
            self.seen = activity;
            self.active_at = now;
        }
        let idle_at = self.active_at + self.timeout;
        if now >= idle_at {
            return None;
        }
        Some((now + self.timeout / LOOKS_PER_TIMEOUT).min(idle_at))
    }
}

/// Drives `conn` to its end, shutting it down with `shut_down` (gracefully) once it has done
/// no work for `timeouts.idle`, and dropping it when it is still there, with no request in
/// flight, `timeouts.close_grace` later.
pub async fn serve_until_idle<C, E>(
    conn: C,
    shut_down: impl FnOnce(Pin<&mut C>),
    activity: &RequestActivity,
    timeouts: IdleTimeouts,
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    tokio::pin!(conn);
    let mut watch = IdleWatch::new(timeouts.idle, activity.look(), Instant::now());
    let next_look = tokio::time::sleep_until(watch.first_look());
    tokio::pin!(next_look);
    let mut shut_down = Some(shut_down);
    loop {
        tokio::select! {
            biased;
            served = conn.as_mut() => return served,
            () = next_look.as_mut() => {
                let now = Instant::now();
                if let Some(at) = watch.look(activity.look(), now) {
                    next_look.as_mut().reset(at);
                } else if let Some(shut_down) = shut_down.take() {
                    tracing::debug!("closing a connection idle for {:?}", timeouts.idle);
                    shut_down(conn.as_mut());
                    watch = IdleWatch::new(timeouts.close_grace, activity.look(), now);
                    next_look.as_mut().reset(watch.first_look());
                } else {
                    tracing::debug!("an idle connection did not close in time: dropped");
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    const IDLE: IdleTimeouts = IdleTimeouts {
        idle: Duration::from_secs(30),
        close_grace: Duration::from_secs(5),
    };

    #[test]
    fn the_word_counts_in_flight_and_changes_with_every_end() {
        let activity = Arc::new(RequestActivity::default());
        let before = activity.look();
        let first = activity.start();
        let second = activity.start();
        assert_eq!(activity.look().in_flight(), 2);
        drop(first);
        assert_eq!(activity.look().in_flight(), 1);
        drop(second);
        let after = activity.look();
        assert_eq!(after.in_flight(), 0);
        assert_ne!(after, before, "two requests came and went");
        assert_eq!(Arc::strong_count(&activity), 1);
    }

    #[test]
    fn a_watch_closes_after_a_whole_quiet_timeout_since_the_last_change() {
        let start = Instant::now();
        let activity = Arc::new(RequestActivity::default());
        let mut watch = IdleWatch::new(IDLE.idle, activity.look(), start);
        let quarter = IDLE.idle / 4;
        assert_eq!(watch.first_look(), start + quarter);
        // A request comes and goes between two looks: idleness counts from the look that saw it.
        drop(activity.start());
        let seen_at = start + quarter;
        assert_eq!(
            watch.look(activity.look(), seen_at),
            Some(seen_at + quarter)
        );
        let mut now = seen_at;
        for _ in 0..3 {
            now += quarter;
            assert_eq!(watch.look(activity.look(), now), Some(now + quarter));
        }
        assert_eq!(watch.look(activity.look(), seen_at + IDLE.idle), None);
    }

    #[test]
    fn a_watch_never_closes_while_a_request_is_in_flight() {
        let start = Instant::now();
        let activity = Arc::new(RequestActivity::default());
        let mut watch = IdleWatch::new(IDLE.idle, activity.look(), start);
        let request = activity.start();
        let mut now = start;
        for _ in 0..100 {
            now += IDLE.idle;
            assert!(watch.look(activity.look(), now).is_some());
        }
        drop(request);
        assert!(watch.look(activity.look(), now + IDLE.idle).is_some());
        assert_eq!(watch.look(activity.look(), now + IDLE.idle * 2), None);
    }

    /// A connection that never ends by itself, shut down by a flag.
    fn endless(shut: &AtomicBool) -> impl Future<Output = Result<(), ()>> + '_ {
        std::future::poll_fn(move |_| {
            if shut.load(Ordering::Relaxed) {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_shut_down_after_the_timeout() {
        let activity = RequestActivity::default();
        let shut = AtomicBool::new(false);
        let started = Instant::now();
        let served = serve_until_idle(
            endless(&shut),
            |_| shut.store(true, Ordering::Relaxed),
            &activity,
            IDLE,
        )
        .await;
        assert_eq!(served, Ok(()));
        assert!(shut.load(Ordering::Relaxed), "shut down, not dropped");
        assert_eq!(started.elapsed(), IDLE.idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_ignores_the_shutdown_is_dropped_after_the_grace() {
        let activity = RequestActivity::default();
        let never = std::future::pending::<Result<(), ()>>();
        let started = Instant::now();
        let served = serve_until_idle(never, |_| {}, &activity, IDLE).await;
        assert_eq!(served, Ok(()));
        assert_eq!(started.elapsed(), IDLE.idle + IDLE.close_grace);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_request_keeps_its_connection_and_idleness_counts_from_its_end() {
        let activity = Arc::new(RequestActivity::default());
        let request = activity.start();
        let ends_at = Instant::now() + IDLE.idle * 3;
        tokio::spawn(async move {
            tokio::time::sleep_until(ends_at).await;
            drop(request);
        });
        let never = std::future::pending::<Result<(), ()>>();
        let served = serve_until_idle(never, |_| {}, &activity, IDLE).await;
        assert_eq!(served, Ok(()));
        let idle_for = Instant::now() - ends_at - IDLE.close_grace;
        assert!(
            idle_for >= IDLE.idle && idle_for <= IDLE.idle + IDLE.idle / 4,
            "{idle_for:?}"
        );
    }
}
