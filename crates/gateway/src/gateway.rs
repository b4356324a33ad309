//! [`Gateway`]: the current pipeline plus what outlives config versions (limiter, key sets,
//! connection pools, metrics), and its listeners.

use crate::flow::RequestIds;
use crate::metrics::{FetchMetrics, GatewayMetrics, LimiterMetrics};
use crate::pipeline::Pipeline;
use crate::proxy::{ClientIp, ConnectionPools};
use crate::revocations::Revocations;
use crate::server::{DATA_PLANE_IDLE, IdleTimeouts, serve_connections};
use crate::shared_answers::RedisAnswers;
use crate::tls::ServerTls;
use arc_swap::ArcSwap;
use hyper::service::service_fn;
use portico_auth::KeySourceRegistry;
use portico_core::config::{ConfigError, GatewayConfig, Problem};
use portico_core::revocation::Revocation;
use portico_limits::SessionLimiter;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub struct Gateway {
    pub(crate) pipeline: ArcSwap<Pipeline>,
    pub(crate) limiter: Arc<SessionLimiter>,
    pub(crate) key_sources: KeySourceRegistry,
    connections: Arc<ConnectionPools>,
    pub(crate) metrics: Arc<GatewayMetrics>,
    pub(crate) request_ids: RequestIds,
    /// Outlive config versions: they come from the store on their own schedule.
    pub(crate) revocations: Revocations,
    /// One load of the revocations at a time, so that of two reads the later one is the one
    /// left in force.
    revocation_loads: tokio::sync::Mutex<()>,
    /// Requests per OAuth client per minute, for whoever keeps them ([`Gateway::usage`]).
    pub(crate) usage: crate::usage::Usage,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("apis", &self.pipeline.load().apis().len())
            .finish()
    }
}

impl Gateway {
    /// Builds the gateway for `config`; remote key sets start loading in the background.
    /// With the Redis limiter, introspection answers are shared through the same Redis.
    pub fn new(config: &GatewayConfig) -> Result<Arc<Self>, ConfigError> {
        let metrics = GatewayMetrics::new();
        // Built once: `limits` and `sessions` take effect at start, not on reload. Connects
        // on first use. Built before the pipeline, whose introspectors share its Redis; its
        // error is reported after the pipeline's problems, as before.
        let limiter = SessionLimiter::from_settings(
            &config.settings.limits,
            config.settings.sessions,
            Arc::new(LimiterMetrics(metrics.clone())),
        );
        let mut key_sources = KeySourceRegistry::new(Arc::new(FetchMetrics(metrics.clone())), true)
            .with_introspection_observer(Arc::new(FetchMetrics(metrics.clone())));
        if let Some(kv) = limiter.as_ref().ok().and_then(SessionLimiter::shared_kv) {
            key_sources = key_sources.with_shared_answers(Arc::new(RedisAnswers(kv)));
        }
        let connections = ConnectionPools::new();
        let pipeline = Pipeline::build(config, &key_sources, &connections, &metrics)?;
        let limiter = Arc::new(limiter.map_err(|e| ConfigError {
            problems: vec![Problem::error("limits.redis_url", e.to_string())],
        })?);
        limiter.spawn_sweeper(Duration::from_secs(30));
        Ok(Arc::new(Self {
            pipeline: ArcSwap::from_pointee(pipeline),
            limiter,
            key_sources,
            connections,
            metrics,
            request_ids: RequestIds::new(),
            revocations: Revocations::default(),
            revocation_loads: tokio::sync::Mutex::new(()),
            usage: crate::usage::Usage::default(),
        }))
    }

    /// Whether `config` would serve: everything [`Gateway::new`] builds from it (routes,
    /// verifiers, upstream TLS, header names, the limiter's settings), built and thrown away,
    /// without listening, fetching or starting a task. What `new` or `reload` would refuse
    /// is refused here, with the same problems.
    pub fn check(config: &GatewayConfig) -> Result<(), ConfigError> {
        let metrics = GatewayMetrics::new();
        Pipeline::build(
            config,
            &KeySourceRegistry::on_demand(),
            &ConnectionPools::new(),
            &metrics,
        )?;
        SessionLimiter::from_settings(
            &config.settings.limits,
            config.settings.sessions,
            Arc::new(LimiterMetrics(metrics)),
        )
        .map(drop)
        .map_err(|e| ConfigError {
            problems: vec![Problem::error("limits.redis_url", e.to_string())],
        })
    }

    /// Builds a pipeline for `config` and swaps it in atomically. Requests in flight finish on
    /// the version they started with; on error nothing changes.
    pub fn reload(&self, config: &GatewayConfig) -> Result<(), ConfigError> {
        let pipeline =
            Pipeline::build(config, &self.key_sources, &self.connections, &self.metrics)?;
        self.pipeline.store(Arc::new(pipeline));
        Ok(())
    }

    /// From the next request on, exactly `revocations` are in force.
    pub fn set_revocations(&self, revocations: Vec<Revocation>) {
        self.revocations.replace(revocations);
        self.metrics.revocations.set(self.revocations.len() as i64);
    }

    /// Reads the revocations in force (`read`, e.g. from the store) and enforces them from
    /// the next request on. Loads run one at a time, each reading only once the one before
    /// has finished: whoever calls this last leaves the latest read in force, whatever the
    /// store's counters say (a store restored from a backup included). On error nothing
    /// changes.
    pub async fn load_revocations<E>(
        &self,
        read: impl Future<Output = Result<Vec<Revocation>, E>>,
    ) -> Result<(), E> {
        let _one_at_a_time = self.revocation_loads.lock().await;
        let revocations = read.await?;
        self.set_revocations(revocations);
        Ok(())
    }

    /// How long a revocation given no end lasts (`max_token_lifetime_secs`).
    pub fn max_token_lifetime_secs(&self) -> u64 {
        self.pipeline.load().max_token_lifetime_secs
    }

    pub fn metrics(&self) -> &GatewayMetrics {
        &self.metrics
    }

    /// The requests counted per OAuth client per minute, to be taken away in batches.
    pub fn usage(&self) -> &crate::usage::Usage {
        &self.usage
    }

    /// Serves the data plane on `listener` (HTTP/1.1 and h2c) until `shutdown` completes.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.serve_data_plane(listener, None, DATA_PLANE_IDLE, shutdown)
            .await;
    }

    /// Serves the data plane over TLS on `listener` (HTTP/2 and HTTP/1.1 by ALPN) until
    /// `shutdown` completes. Certificates reload through `tls.certificates()`.
    pub async fn serve_tls(
        self: Arc<Self>,
        listener: TcpListener,
        tls: &ServerTls,
        shutdown: impl Future<Output = ()>,
    ) {
        self.serve_data_plane(listener, Some(tls.acceptor()), DATA_PLANE_IDLE, shutdown)
            .await;
    }

    /// For tests only: [`Gateway::serve`] (or, with `tls`, [`Gateway::serve_tls`]) with
    /// connections that do no work shut down after `idle_timeout` rather than 30 s, so that a
    /// test need not wait that long. Not configuration: the idle timeout is fixed.
    #[doc(hidden)]
    pub async fn serve_with_idle_timeout(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<&ServerTls>,
        idle_timeout: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        let idle = IdleTimeouts {
            idle: idle_timeout,
            close_grace: DATA_PLANE_IDLE.close_grace.min(idle_timeout),
        };
        self.serve_data_plane(listener, tls.map(ServerTls::acceptor), idle, shutdown)
            .await;
    }

    async fn serve_data_plane(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        idle: IdleTimeouts,
        shutdown: impl Future<Output = ()>,
    ) {
        let over_tls = tls.is_some();
        serve_connections(listener, tls, idle, shutdown, move |remote| {
            let client_ip = ClientIp::new(remote);
            let client_ip = if over_tls {
                client_ip.over_tls()
            } else {
                client_ip
            };
            let gateway = self.clone();
            service_fn(move |req| {
                let gateway = gateway.clone();
                let client_ip = client_ip.clone();
                async move { Ok::<_, Infallible>(gateway.handle(req, &client_ip).await) }
            })
        })
        .await;
    }

    /// Serves `/metrics`, `/health` and `/ready` on `listener` until `shutdown` completes.
    pub async fn serve_admin(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) {
        crate::ops::serve(self, listener, shutdown).await;
    }
}
