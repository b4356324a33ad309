//! A fresh PostgreSQL database per test on the machine's server (127.0.0.1:5432, trust auth;
//! `PORTICO_TEST_POSTGRES_URL` points elsewhere), dropped when the value is dropped. Tests
//! run in parallel processes, so each gets its own database.

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::sync::atomic::{AtomicU64, Ordering};

/// The server's maintenance database, from which test databases are created.
pub fn admin_url() -> String {
    std::env::var("PORTICO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[derive(Debug)]
pub struct TempDatabase {
    name: String,
    /// `postgres://…/<name>`.
    pub url: String,
}

impl TempDatabase {
    pub async fn create(label: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "portico_test_{label}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block on itself.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}
