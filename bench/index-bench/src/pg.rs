//! The PostgreSQL side: a private PostgreSQL 15 from `testkit` (its
//! settings as they are: `fsync=off`, the rest PostgreSQL's defaults), a
//! bulk load with two concurrent `COPY … FROM STDIN` into the schema
//! `PgIndex::open` created (secondary indexes dropped first and rebuilt
//! from their own definitions, the overview's summary tables filled, then
//! `VACUUM (ANALYZE)`), the database's size,
//! and the plans of the server's own statements, logged by `auto_explain`
//! with `ANALYZE` and `BUFFERS`.

use std::time::{Duration, Instant};

use asset_catalog_server::config::SecretString;
use asset_catalog_server::index::{Index, PgIndex, PgOptions, SslMode};
use bytes::Bytes;
use futures_util::SinkExt;
use testkit::pg::PgCluster;
use tokio_postgres::{Client, NoTls};

use crate::LoadTimes;
use crate::data::Catalog;

const DB: &str = "catalog";
/// Bytes of COPY text per message.
const CHUNK: usize = 1 << 20;
/// Settings shown in the report.
const SHOWN: [&str; 6] = [
    "server_version",
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "fsync",
    "synchronous_commit",
];

/// A running cluster with the `catalog` database.
#[derive(Debug)]
pub struct Pg {
    cluster: PgCluster,
    config: tokio_postgres::Config,
}

impl Pg {
    pub async fn start() -> anyhow::Result<Self> {
        let cluster = tokio::task::spawn_blocking(PgCluster::start).await?;
        let url = cluster.create_database(DB);
        let config: tokio_postgres::Config = url.parse()?;
        Ok(Self { cluster, config })
    }

    /// The server's options for this database (pool of `pool_size`).
    pub fn options(&self, pool_size: usize) -> PgOptions {
        PgOptions {
            config: self.config.clone(),
            password: Some(SecretString::new(self.cluster.superuser_password())),
            ssl: SslMode::Disable,
            pool_size,
            connect_timeout: Duration::from_secs(10),
        }
    }

    pub async fn open_index(&self, pool_size: usize) -> anyhow::Result<Index> {
        Ok(Index::Postgres(
            PgIndex::open(self.options(pool_size)).await?,
        ))
    }

    /// A plain connection as the superuser.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let mut config = self.config.clone();
        config.password(self.cluster.superuser_password());
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("index-bench: PostgreSQL connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// Load the catalog into the (empty, migrated) schema.
    pub async fn bulk_load(&self, catalog: &Catalog, order: &[u32]) -> anyhow::Result<LoadTimes> {
        let started = Instant::now();
        let (one, two) = (self.connect().await?, self.connect().await?);
        for c in [&one, &two] {
            // Superuser: no FK triggers while loading (both tables load at once).
            c.batch_execute(
                "SET session_replication_role = replica; SET maintenance_work_mem = '512MB'",
            )
            .await?;
        }
        let indexes = secondary_indexes(&one).await?;
        for (name, _) in &indexes {
            one.batch_execute(&format!("DROP INDEX \"{name}\"")).await?;
        }
        copy_rows(&one, &two, catalog, order).await?;
        // The replica role kept the triggers quiet: fill the overview's
        // summary tables as the migration does (server/src/index/postgres/schema.rs, V3).
        one.batch_execute(
            "TRUNCATE days, clients;
             INSERT INTO days (day, shard, assets, bytes)
                 SELECT asset_catalog_day(first_seen), 0, count(*), sum(size) FROM assets GROUP BY 1;
             INSERT INTO clients (client, shard, sightings, last_seen)
                 SELECT client, 0, count(*), max(seen_at) FROM sightings GROUP BY client;",
        )
        .await?;
        let rows_done = Instant::now();
        // Two builds at a time (a GIN build is single-threaded).
        let defs: Vec<&str> = indexes.iter().map(|(_, sql)| sql.as_str()).collect();
        let half = |skip| {
            defs.iter()
                .skip(skip)
                .step_by(2)
                .copied()
                .collect::<Vec<_>>()
                .join(";\n")
        };
        let (a, b) = (half(0), half(1));
        tokio::try_join!(one.batch_execute(&a), two.batch_execute(&b))?;
        let indexes_done = Instant::now();
        tokio::try_join!(
            one.batch_execute("VACUUM (ANALYZE) assets"),
            two.batch_execute("VACUUM (ANALYZE) sightings")
        )?;
        Ok(LoadTimes {
            rows_s: (rows_done - started).as_secs_f64(),
            indexes_s: (indexes_done - rows_done).as_secs_f64(),
            analyze_s: indexes_done.elapsed().as_secs_f64(),
            total_s: started.elapsed().as_secs_f64(),
        })
    }

    /// Remove what the insert load added (assets first seen at or after
    /// `from`, and their sightings), so that later measurements see the catalog.
    pub async fn remove_since(&self, from: i64) -> anyhow::Result<()> {
        let c = self.connect().await?;
        // Their jobs first, in one statement, then vacuumed away: the
        // trigger that deletes an asset's jobs looks them up by hash, which
        // no index of `jobs` leads with (a scan of the table per asset).
        c.execute(
            "DELETE FROM jobs WHERE sha256 IN (SELECT sha256 FROM assets WHERE first_seen >= $1)",
            &[&from],
        )
        .await?;
        c.batch_execute("VACUUM jobs").await?;
        c.execute(
            "DELETE FROM sightings WHERE sha256 IN (SELECT sha256 FROM assets WHERE first_seen >= $1)",
            &[&from],
        )
        .await?;
        c.execute("DELETE FROM assets WHERE first_seen >= $1", &[&from])
            .await?;
        c.batch_execute("VACUUM (ANALYZE) assets").await?;
        c.batch_execute("VACUUM (ANALYZE) sightings").await?;
        Ok(())
    }

    /// `(what, bytes)`: the database, then each table with its indexes.
    pub async fn sizes(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let c = self.connect().await?;
        let row = c
            .query_one(
                "SELECT pg_database_size(current_database()), pg_total_relation_size('assets'), \
                 pg_total_relation_size('sightings')",
                &[],
            )
            .await?;
        let size = |i| u64::try_from(row.get::<_, i64>(i)).unwrap_or_default();
        Ok(vec![
            ("database".into(), size(0)),
            ("assets with its indexes".into(), size(1)),
            ("sightings with its indexes".into(), size(2)),
        ])
    }

    /// `ALTER SYSTEM SET name = value` and a restart (for settings such as
    /// `shared_buffers`); connections open before are closed.
    pub async fn restart_with(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let c = self.connect().await?;
        c.batch_execute(&format!("ALTER SYSTEM SET {name} = '{value}'"))
            .await?;
        drop(c);
        tokio::task::block_in_place(|| self.cluster.restart());
        Ok(())
    }

    /// `name = value` of the settings that matter here.
    pub async fn settings(&self) -> anyhow::Result<Vec<String>> {
        let c = self.connect().await?;
        let mut out = Vec::new();
        for name in SHOWN {
            let row = c.query_one(&format!("SHOW {name}"), &[]).await?;
            out.push(format!("{name} = {}", row.get::<_, String>(0)));
        }
        Ok(out)
    }

    /// New sessions of the database log every statement's plan with
    /// `EXPLAIN (ANALYZE, BUFFERS)` (`on`), or no longer (`off`).
    pub async fn auto_explain(&self, on: bool) -> anyhow::Result<()> {
        let c = self.connect().await?;
        let sql = if on {
            format!(
                "LOAD 'auto_explain';
                 ALTER DATABASE {DB} SET session_preload_libraries = 'auto_explain';
                 ALTER DATABASE {DB} SET auto_explain.log_min_duration = 0;
                 ALTER DATABASE {DB} SET auto_explain.log_analyze = on;
                 ALTER DATABASE {DB} SET auto_explain.log_buffers = on;"
            )
        } else {
            format!("ALTER DATABASE {DB} RESET ALL")
        };
        c.batch_execute(&sql).await?;
        Ok(())
    }

    /// Length of the server's log so far (a mark for [`Pg::plans_since`]).
    pub fn log_mark(&self) -> usize {
        self.cluster.log().len()
    }

    /// The plans `auto_explain` logged since `mark` for statements on
    /// `assets`, each with its statement.
    pub fn plans_since(&self, mark: usize) -> String {
        let log = self.cluster.log();
        let mut plans = Vec::new();
        let mut current: Option<Vec<&str>> = None;
        for line in log.get(mark..).unwrap_or_default().lines() {
            if line.contains("LOG:  duration:") && line.ends_with("plan:") {
                plans.extend(current.take());
                let head = line.split_once("LOG:  ").map_or(line, |(_, rest)| rest);
                current = Some(vec![head]);
            } else if line.starts_with('\t') {
                if let Some(lines) = current.as_mut() {
                    lines.push(line.strip_prefix('\t').unwrap_or(line));
                }
            } else {
                plans.extend(current.take());
            }
        }
        plans.extend(current);
        plans
            .into_iter()
            .filter(|lines| {
                lines
                    .iter()
                    .any(|l| l.starts_with("Query Text:") && l.contains("FROM assets"))
            })
            .map(|lines| shorten_arrays(&lines.join("\n")))
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

/// `(name, CREATE INDEX …)` of every index on assets and sightings that no
/// constraint owns (the primary keys stay).
async fn secondary_indexes(c: &Client) -> anyhow::Result<Vec<(String, String)>> {
    let rows = c
        .query(
            "SELECT i.indexname::text, i.indexdef FROM pg_indexes i \
             WHERE i.schemaname = current_schema() AND i.tablename IN ('assets', 'sightings') \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname) \
             ORDER BY i.indexname",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Both tables at once: assets on `one`, sightings on `two`.
async fn copy_rows(
    one: &Client,
    two: &Client,
    catalog: &Catalog,
    order: &[u32],
) -> anyhow::Result<()> {
    let assets = one
        .copy_in::<_, Bytes>(
            "COPY assets (sha256, key, size, content_type, name, names, first_seen, last_seen) FROM STDIN",
        )
        .await?;
    let sightings = two
        .copy_in::<_, Bytes>(
            "COPY sightings (sha256, client, path, name, mtime, seen_at) FROM STDIN",
        )
        .await?;
    let mut assets = std::pin::pin!(assets);
    let mut sightings = std::pin::pin!(sightings);
    let (mut a_buf, mut s_buf) = (
        String::with_capacity(CHUNK * 2),
        String::with_capacity(CHUNK * 2),
    );
    for &i in order {
        let a = catalog.asset(i);
        let fields = [
            &a.sha256,
            &a.key,
            &a.size.to_string(),
            a.content_type,
            &a.name,
            &a.names(),
        ];
        line(&mut a_buf, &fields, &[a.first_seen, a.last_seen]);
        for s in &a.sightings {
            line(
                &mut s_buf,
                &[&a.sha256, s.client, &s.path, &s.name, &s.mtime],
                &[s.seen_at],
            );
        }
        if a_buf.len() >= CHUNK {
            assets.send(Bytes::from(std::mem::take(&mut a_buf))).await?;
        }
        if s_buf.len() >= CHUNK {
            sightings
                .send(Bytes::from(std::mem::take(&mut s_buf)))
                .await?;
        }
    }
    assets.send(Bytes::from(a_buf)).await?;
    sightings.send(Bytes::from(s_buf)).await?;
    assets.as_mut().finish().await?;
    sightings.as_mut().finish().await?;
    Ok(())
}

/// One row of COPY's text format.
fn line(buf: &mut String, texts: &[&str], numbers: &[i64]) {
    use std::fmt::Write as _;
    for text in texts {
        for ch in text.chars() {
            match ch {
                '\\' => buf.push_str("\\\\"),
                '\t' => buf.push_str("\\t"),
                '\n' => buf.push_str("\\n"),
                '\r' => buf.push_str("\\r"),
                c => buf.push(c),
            }
        }
        buf.push('\t');
    }
    for (n, value) in numbers.iter().enumerate() {
        let sep = if n + 1 == numbers.len() { '\n' } else { '\t' };
        let _ = write!(buf, "{value}{sep}");
    }
}

/// The plan with each long array literal (the check's 10,000 hashes) cut
/// to its first element and a count.
fn shorten_arrays(plan: &str) -> String {
    let mut out = String::with_capacity(plan.len().min(1 << 16));
    let mut rest = plan;
    while let Some(start) = rest.find("'{") {
        let Some(len) = rest[start..].find("}'") else {
            break;
        };
        let body = &rest[start + 2..start + len];
        out.push_str(&rest[..start]);
        if body.len() > 200 {
            let first = body.split(',').next().unwrap_or_default();
            let n = body.split(',').count();
            out.push_str(&format!("'{{{first},… {n} elements}}'"));
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}
