//! A service that keeps a small PostgreSQL connection pool on dynamic
//! credentials the client renews and rotates: the pool is rebuilt on each
//! rotation, and the old user is revoked after the grace period, once its
//! connections have gone.
//!
//! Set-up (a role whose users live 1 h, renewable up to 24 h):
//!
//! ```text
//! bao secrets enable database
//! bao write database/config/pg plugin_name=postgresql-database-plugin allowed_roles=app \
//!     connection_url='postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres' \
//!     username=postgres password=...
//! bao write database/roles/app db_name=pg default_ttl=1h max_ttl=24h \
//!     creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
//! ```
//!
//! Run (VAULT_ADDR and credentials as for any client; PGHOST/PGPORT the
//! database): `cargo run -p vault-secret --example dynamic_postgres -- database/creds/app`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;
use vault_secret::{
    VaultClient,
    lease::{LeaseEvent, LeasedSecret},
};

/// Connections opened with one set of credentials.
struct Pool {
    user: String,
    clients: Vec<tokio_postgres::Client>,
}

/// Opens `size` connections with the lease's current credentials.
async fn connect(
    db: &LeasedSecret,
    size: usize,
) -> Result<Pool, Box<dyn std::error::Error + Send + Sync>> {
    let creds = db.current();
    let user = creds.field("username")?.expose_secret().to_owned();
    let password = creds.field("password")?;
    let mut config = tokio_postgres::Config::new();
    config
        .host(std::env::var("PGHOST").as_deref().unwrap_or("127.0.0.1"))
        .port(
            std::env::var("PGPORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(5432),
        )
        .user(&user)
        .password(password.expose_secret())
        .dbname("postgres");
    let mut clients = Vec::with_capacity(size);
    for _ in 0..size {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        // Ends when the client drops (the pool is replaced).
        tokio::spawn(connection);
        clients.push(client);
    }
    Ok(Pool { user, clients })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "database/creds/app".to_owned());
    let vault = VaultClient::from_env().await?;
    let db = vault.lease(&path).await?;
    let lease = db.lease();
    println!(
        "lease {} for {:?} (renewable: {})",
        lease.id, lease.duration, lease.renewable
    );
    let pool = Arc::new(RwLock::new(connect(&db, 4).await?));

    // Rebuild the pool when the credentials are rotated.
    let mut changes = db.changes();
    let rebuilder = {
        let (pool, db) = (pool.clone(), db.clone());
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let event = changes.borrow_and_update().clone();
                match event {
                    LeaseEvent::Rotated(lease) => match connect(&db, 4).await {
                        // The old pool drops here: its connections close
                        // before its user is revoked at the end of the grace period.
                        Ok(fresh) => {
                            println!("rotated: lease {}, user {}", lease.id, fresh.user);
                            *pool.write().await = fresh;
                        }
                        Err(e) => eprintln!("cannot connect with the new credentials: {e}"),
                    },
                    LeaseEvent::Renewed(lease) => println!("renewed for {:?}", lease.duration),
                    LeaseEvent::Lost(lost) => {
                        eprintln!("credentials lost ({}): {}", lost.kind, lost.reason)
                    }
                    _ => {}
                }
            }
        })
    };

    // The service's work, until Ctrl-C.
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    for n in 0usize.. {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let pool = pool.read().await;
                let client = &pool.clients[n % pool.clients.len()];
                let row = client.query_one("SELECT current_user::text", &[]).await?;
                println!("query as {}", row.get::<_, String>(0));
            }
        }
    }

    // Revokes the lease (the database user goes), then the client's token.
    drop(pool);
    vault.shutdown().await?;
    rebuilder.await.ok();
    Ok(())
}
