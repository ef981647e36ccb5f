//! The listing query of `GET /v1/assets`, built once for both backends:
//! the filters, the cursor, and the name search in two stages.
//!
//! Every page is newest first, keyed on `(first_seen, sha256)`: the
//! `assets_by_first_seen` index is walked from the cursor and the walk stops
//! after `limit + 1` rows that match, so the depth of a page costs nothing.
//! A name search cannot rely on that walk alone: a rare name, or one whose
//! assets all lie far back in time, would make it read the whole table (1.9 s
//! on SQLite and 265 ms on PostgreSQL at 1,000,000 assets, bench B8). So a
//! name search runs in two stages:
//!
//! 1. the same walk, bounded to the next [`NAME_WALK_ROWS`] rows: a frequent
//!    name fills the page from there;
//! 2. only when that finds fewer than `limit + 1`: the assets whose `names`
//!    column the trigram index says may contain the text (SQLite: the FTS5
//!    table `assets_names`; PostgreSQL: a `gin_trgm_ops` index), filtered and
//!    sorted. A rare name has few candidates.
//!
//! Both stages give the exact answer: stage 1 stops only when it has a whole
//! page, and every matching row outside its window is older than every row
//! in it. `names` holds the asset's name and every distinct name a sighting
//! ever had (the schema's triggers keep it), so it is a superset of what the
//! filter matches; the exact test (`_` and `%` literal, ASCII
//! case-insensitive) runs on each row either stage returns.

use super::types::{ListFilter, escape_like, to_nanos};

/// Rows of the newest-first walk a name search reads before it asks the
/// trigram index (about 20 ms on either backend).
pub const NAME_WALK_ROWS: usize = 20_000;

/// One bound value of a listing statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
}

/// What differs between the backends' SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// Placeholders are `{prefix}1`, `{prefix}2`…: `?` for SQLite, `$` for PostgreSQL.
    pub prefix: char,
    /// ASCII case-insensitive `LIKE`: SQLite's `LIKE`, PostgreSQL's `ILIKE`.
    pub like: &'static str,
    /// The rows of `assets` the trigram index offers for a pattern bound to
    /// the given placeholder; `escaped` says which pattern it takes (`true`:
    /// `%text%` with `\`, `%`, `_` escaped; `false`: `%text%` as typed, which
    /// matches a superset, for an index that takes no `ESCAPE`).
    pub candidates: fn(&str) -> String,
    pub escaped: bool,
}

/// The statements of one listing page and their parameters.
#[derive(Debug)]
pub(crate) struct ListQuery {
    dialect: Dialect,
    /// Where the walk starts and ends (cursor, `until`, `since`).
    bounds: Vec<String>,
    /// Everything else (name, type, client, what the jobs found).
    filters: Vec<String>,
    params: Vec<Param>,
    /// The name searched for, if any.
    name: Option<String>,
    limit: usize,
}

const ORDER: &str = "ORDER BY a.first_seen DESC, a.sha256 DESC";

impl ListQuery {
    pub(crate) fn new(filter: &ListFilter, dialect: Dialect) -> Self {
        let mut q = Self {
            dialect,
            bounds: Vec::new(),
            filters: Vec::new(),
            params: Vec::new(),
            name: filter.name.clone(),
            limit: filter.limit,
        };
        if let Some(cursor) = &filter.cursor {
            let at = q.bind(Param::Int(cursor.first_seen));
            let sha = q.bind(Param::Text(cursor.sha256.to_string()));
            q.bounds
                .push(format!("(a.first_seen, a.sha256) < ({at}, {sha})"));
        }
        if let Some(until) = filter.until {
            let at = q.bind(Param::Int(to_nanos(until)));
            q.bounds.push(format!("a.first_seen < {at}"));
        }
        if let Some(since) = filter.since {
            let at = q.bind(Param::Int(to_nanos(since)));
            q.bounds.push(format!("a.first_seen >= {at}"));
        }
        if let Some(name) = &filter.name {
            let p = q.bind(Param::Text(format!("%{}%", escape_like(name))));
            let like = dialect.like;
            // `names` first: the exact test only runs where it matched.
            q.filters.push(format!(
                "a.names {like} {p} ESCAPE '\\' AND (a.name {like} {p} ESCAPE '\\' OR EXISTS \
                 (SELECT 1 FROM sightings s WHERE s.sha256 = a.sha256 AND s.name {like} {p} ESCAPE '\\'))"
            ));
        }
        if let Some(ct) = &filter.content_type {
            if ct.ends_with('/') {
                let prefix = q.bind(Param::Text(format!("{}%", escape_like(ct))));
                q.filters
                    .push(format!("a.content_type LIKE {prefix} ESCAPE '\\'"));
            } else {
                let exact = q.bind(Param::Text(ct.clone()));
                let with = q.bind(Param::Text(format!("{};%", escape_like(ct))));
                q.filters.push(format!(
                    "(a.content_type = {exact} OR a.content_type LIKE {with} ESCAPE '\\')"
                ));
            }
        }
        if let Some(kind) = filter.kind {
            let k = q.bind(Param::Text(kind.as_str().into()));
            q.filters.push(format!("a.kind = {k}"));
        }
        if let Some(since) = filter.taken_since {
            let at = q.bind(Param::Int(to_nanos(since)));
            q.filters.push(format!("a.taken_at >= {at}"));
        }
        if let Some(until) = filter.taken_until {
            let at = q.bind(Param::Int(to_nanos(until)));
            q.filters.push(format!("a.taken_at < {at}"));
        }
        if !filter.integrity.is_empty() {
            let marks: Vec<String> = filter
                .integrity
                .iter()
                .map(|i| q.bind(Param::Text(i.as_str().into())))
                .collect();
            q.filters
                .push(format!("a.integrity IN ({})", marks.join(", ")));
        }
        if let Some(client) = &filter.client {
            let c = q.bind(Param::Text(client.clone()));
            q.filters.push(format!(
                "EXISTS (SELECT 1 FROM sightings s WHERE s.sha256 = a.sha256 AND s.client = {c})"
            ));
        }
        q
    }

    fn bind(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("{}{}", self.dialect.prefix, self.params.len())
    }

    /// The parameters of [`ListQuery::first`].
    pub(crate) fn params(&self) -> &[Param] {
        &self.params
    }

    /// The statement to run first. Without a name, it is the whole answer;
    /// with one, it is stage 1, and [`ListQuery::complete`] says whether it
    /// was enough.
    pub(crate) fn first(&self, columns: &str) -> String {
        let fetch = self.limit + 1;
        if self.name.is_none() {
            return format!(
                "SELECT {columns} FROM assets a {} {ORDER} LIMIT {fetch}",
                where_sql(self.bounds.iter().chain(&self.filters))
            );
        }
        format!(
            "SELECT {columns} FROM (SELECT * FROM assets a {} {ORDER} LIMIT {NAME_WALK_ROWS}) a \
             {} {ORDER} LIMIT {fetch}",
            where_sql(&self.bounds),
            where_sql(&self.filters),
        )
    }

    /// Whether the rows [`ListQuery::first`] returned are the page.
    pub(crate) fn complete(&self, rows: usize) -> bool {
        self.name.is_none() || rows > self.limit
    }

    /// Stage 2 of a name search: the statement and its parameters (those of
    /// [`ListQuery::first`] and one more, the pattern for the trigram index).
    pub(crate) fn second(&self, columns: &str) -> (String, Vec<Param>) {
        let name = self.name.as_deref().unwrap_or_default();
        let pattern = if self.dialect.escaped {
            format!("%{}%", escape_like(name))
        } else {
            format!("%{name}%")
        };
        let mut params = self.params.clone();
        params.push(Param::Text(pattern));
        let p = format!("{}{}", self.dialect.prefix, params.len());
        // Sorted and cut to a page before `columns` (a subquery per row) are
        // computed: SQLite would compute them for every candidate.
        let sql = format!(
            "SELECT {columns} FROM (SELECT * FROM ({}) a {} {ORDER} LIMIT {}) a {ORDER}",
            (self.dialect.candidates)(&p),
            where_sql(self.bounds.iter().chain(&self.filters)),
            self.limit + 1
        );
        (sql, params)
    }
}

fn where_sql<'a>(clauses: impl IntoIterator<Item = &'a String>) -> String {
    let joined: Vec<&str> = clauses.into_iter().map(String::as_str).collect();
    if joined.is_empty() {
        return String::new();
    }
    format!("WHERE {}", joined.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Cursor;

    const TEST: Dialect = Dialect {
        prefix: '$',
        like: "ILIKE",
        candidates: |p| format!("SELECT * FROM assets WHERE names ILIKE {p}"),
        escaped: true,
    };

    fn filter() -> ListFilter {
        ListFilter {
            limit: 100,
            ..ListFilter::default()
        }
    }

    #[test]
    fn without_a_name_one_statement_is_the_page() {
        let q = ListQuery::new(
            &ListFilter {
                content_type: Some("image/".into()),
                ..filter()
            },
            TEST,
        );
        let sql = q.first("a.sha256");
        assert_eq!(
            sql,
            "SELECT a.sha256 FROM assets a WHERE a.content_type LIKE $1 ESCAPE '\\' \
             ORDER BY a.first_seen DESC, a.sha256 DESC LIMIT 101"
        );
        assert!(q.complete(0), "no second stage without a name");
        assert_eq!(q.params(), &[Param::Text("image/%".into())]);
    }

    #[test]
    fn a_name_search_walks_a_bounded_window_then_asks_the_index() {
        let cursor = Cursor {
            first_seen: 7,
            sha256: "a".repeat(64).parse().expect("sha"),
        };
        let q = ListQuery::new(
            &ListFilter {
                name: Some("50%_off".into()),
                cursor: Some(cursor),
                ..filter()
            },
            TEST,
        );
        let first = q.first("a.sha256");
        assert!(
            first.contains(&format!(
                "FROM (SELECT * FROM assets a WHERE (a.first_seen, a.sha256) < ($1, $2) \
                 ORDER BY a.first_seen DESC, a.sha256 DESC LIMIT {NAME_WALK_ROWS}) a WHERE a.names ILIKE $3"
            )),
            "{first}"
        );
        assert!(!q.complete(100) && q.complete(101));
        let (second, params) = q.second("a.sha256");
        assert!(
            second.starts_with(
                "SELECT a.sha256 FROM (SELECT * FROM (SELECT * FROM assets WHERE names ILIKE $4) a \
                 WHERE (a.first_seen, a.sha256) < ($1, $2) AND a.names ILIKE $3"
            ),
            "{second}"
        );
        assert_eq!(params.len(), 4);
        assert_eq!(params[3], Param::Text("%50\\%\\_off%".into()));
        let raw = ListQuery::new(
            &ListFilter {
                name: Some("50%_off".into()),
                ..filter()
            },
            Dialect {
                escaped: false,
                ..TEST
            },
        );
        assert_eq!(raw.second("x").1[1], Param::Text("%50%_off%".into()));
    }
}
