//! The store suites' fixture: a store on each backend, and the macro that runs a scenario
//! on both.
#![allow(dead_code)]

use portico_store::{DatabaseUrl, SecretKey, Store, StoreSettings};
use portico_testkit::TempDir;
use portico_testkit::postgres::TempDatabase;

/// A store and what keeps it alive.
pub struct Fixture {
    pub store: Store,
    pub settings: StoreSettings,
    pub key: String,
    _dir: TempDir,
    _db: Option<TempDatabase>,
}

impl Fixture {
    pub async fn reopen(&self) -> Store {
        Store::open(&self.settings, SecretKey::from_base64(&self.key).unwrap())
            .await
            .unwrap()
    }
}

pub fn new_key() -> SecretKey {
    SecretKey::from_base64(&SecretKey::generate_base64().unwrap()).unwrap()
}

pub async fn sqlite() -> Fixture {
    let dir = TempDir::new("store");
    let settings = StoreSettings::new(DatabaseUrl::Sqlite(dir.path().join("portico.db")));
    open(settings, dir, None).await
}

pub async fn postgres() -> Fixture {
    let db = TempDatabase::create("store").await;
    let settings = StoreSettings::new(db.url.parse().unwrap());
    open(settings, TempDir::new("store-pg"), Some(db)).await
}

async fn open(settings: StoreSettings, dir: TempDir, db: Option<TempDatabase>) -> Fixture {
    let key = SecretKey::generate_base64().unwrap();
    let store = Store::open(&settings, SecretKey::from_base64(&key).unwrap())
        .await
        .unwrap();
    Fixture {
        store,
        settings,
        key,
        _dir: dir,
        _db: db,
    }
}

/// Runs each scenario on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident => $scenario:ident;)*) => {
        mod sqlite_backend {
            $(#[tokio::test] async fn $name() { super::$scenario(super::common::sqlite().await).await })*
        }
        mod postgres_backend {
            $(#[tokio::test] async fn $name() { super::$scenario(super::common::postgres().await).await })*
        }
    };
}
