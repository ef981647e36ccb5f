//! What is wrong with one hash, from its index row and its content objects
//! in the bucket. Pure logic, the same for `fsck`'s first look (the bucket
//! listing against the index walk) and its second (fresh reads right before
//! it reports or acts).

use std::time::SystemTime;

use object_store::ObjectMeta;

/// The index's row for one hash, as far as `fsck` compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub size: u64,
}

/// One disagreement between the index and the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Content objects (oldest first) the index has no row for.
    Unindexed { keys: Vec<String> },
    /// The row's object is gone and the bucket has no other copy.
    MissingObject { key: String },
    /// The row names an object the bucket lacks while it has others of the
    /// hash: `target` is the one to point at (the oldest of those whose size
    /// is the row's, else the oldest), `extras` the rest.
    WrongKey {
        key: String,
        target: String,
        extras: Vec<String>,
    },
    /// The row's object exists, and so do these other copies of the hash.
    ExtraCopies { key: String, extras: Vec<String> },
    /// The row's size is not its object's (reported, never repaired).
    SizeMismatch { key: String, row: u64, object: u64 },
}

/// Every [`Problem::kind`], in the order the summary counts them.
pub const KINDS: [&str; 5] = [
    "unindexed",
    "missing-object",
    "wrong-key",
    "extra-copies",
    "size-mismatch",
];

impl Problem {
    /// A short name, the first word of the report line.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unindexed { .. } => "unindexed",
            Self::MissingObject { .. } => "missing-object",
            Self::WrongKey { .. } => "wrong-key",
            Self::ExtraCopies { .. } => "extra-copies",
            Self::SizeMismatch { .. } => "size-mismatch",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unindexed { keys } => write!(f, "no row; bucket has {}", list(keys)),
            Self::MissingObject { key } => write!(f, "row key {}; no object", key.escape_debug()),
            Self::WrongKey {
                key,
                target,
                extras,
            } => {
                write!(f, "row key {}; bucket has {target}", key.escape_debug())?;
                if !extras.is_empty() {
                    write!(f, ", {}", list(extras))?;
                }
                Ok(())
            }
            Self::ExtraCopies { key, extras } => {
                write!(
                    f,
                    "row key {}; extra copies {}",
                    key.escape_debug(),
                    list(extras)
                )
            }
            Self::SizeMismatch { key, row, object } => write!(
                f,
                "row key {}; index says {row} bytes, object has {object}",
                key.escape_debug()
            ),
        }
    }
}

fn list(keys: &[String]) -> String {
    keys.join(", ")
}

/// What [`diagnose`] found for one hash.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub problems: Vec<Problem>,
    /// Objects no row points to, modified after the cutoff: left alone,
    /// since an upload writes its object before its row.
    pub recent: u64,
}

/// Compare `row` with `objects` (the hash's content objects, oldest first);
/// objects modified after `cutoff` that no row points to are only counted.
pub fn diagnose(row: Option<&Row>, objects: &[ObjectMeta], cutoff: SystemTime) -> Diagnosis {
    let is_recent = |m: &&ObjectMeta| SystemTime::from(m.last_modified) > cutoff;
    let Some(row) = row else {
        return without_row(objects, is_recent);
    };
    let pointed = objects.iter().find(|m| m.location.as_ref() == row.key);
    let (recent, old): (Vec<&ObjectMeta>, Vec<&ObjectMeta>) = objects
        .iter()
        .filter(|m| m.location.as_ref() != row.key)
        .partition(is_recent);
    let recent = recent.len() as u64;
    let key = row.key.clone();
    let mut problems = Vec::new();
    match pointed {
        Some(object) => {
            if object.size != row.size {
                problems.push(Problem::SizeMismatch {
                    key: key.clone(),
                    row: row.size,
                    object: object.size,
                });
            }
            if !old.is_empty() {
                let extras = old.into_iter().map(key_of).collect();
                problems.push(Problem::ExtraCopies { key, extras });
            }
        }
        None => match repoint(&key, row.size, &old) {
            Some(problem) => problems.push(problem),
            // Only recent copies besides a missing object: something is under way.
            None if recent > 0 => {}
            None => problems.push(Problem::MissingObject { key }),
        },
    }
    found(problems, recent)
}

/// Content without a row: unindexed, unless one of its objects is recent
/// (an upload may be about to insert the row: the whole hash is left).
fn without_row(objects: &[ObjectMeta], is_recent: impl Fn(&&ObjectMeta) -> bool) -> Diagnosis {
    if objects.iter().any(|m| is_recent(&m)) {
        return found(Vec::new(), objects.len() as u64);
    }
    if objects.is_empty() {
        return Diagnosis::default();
    }
    let keys = objects.iter().map(key_of).collect();
    found(vec![Problem::Unindexed { keys }], 0)
}

/// The row `key` (of `size`) names no object: point it at one of `old`.
fn repoint(key: &str, size: u64, old: &[&ObjectMeta]) -> Option<Problem> {
    let target = old
        .iter()
        .find(|m| m.size == size)
        .or_else(|| old.first())?;
    let extras = old
        .iter()
        .filter(|m| m.location != target.location)
        .map(|m| key_of(m))
        .collect();
    Some(Problem::WrongKey {
        key: key.to_owned(),
        target: key_of(target),
        extras,
    })
}

fn found(problems: Vec<Problem>, recent: u64) -> Diagnosis {
    Diagnosis { problems, recent }
}

fn key_of(meta: &ObjectMeta) -> String {
    meta.location.to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NOW: Duration = Duration::from_secs(1_700_000_000);

    fn cutoff() -> SystemTime {
        SystemTime::UNIX_EPOCH + NOW - Duration::from_secs(60)
    }

    /// An object of `size` bytes last modified `age` seconds before `NOW`.
    fn obj(key: &str, size: u64, age: u64) -> ObjectMeta {
        ObjectMeta {
            location: key.into(),
            last_modified: (SystemTime::UNIX_EPOCH + NOW - Duration::from_secs(age)).into(),
            size,
            e_tag: None,
            version: None,
        }
    }

    fn row(key: &str, size: u64) -> Row {
        Row {
            key: key.into(),
            size,
        }
    }

    fn problems(row: Option<&Row>, objects: &[ObjectMeta]) -> (Vec<Problem>, u64) {
        let d = diagnose(row, objects, cutoff());
        (d.problems, d.recent)
    }

    #[test]
    fn objects_without_a_row_are_unindexed_unless_one_is_recent() {
        let old = [obj("h.jpg", 3, 900), obj("h.png", 3, 600)];
        let keys = vec!["h.jpg".to_owned(), "h.png".to_owned()];
        assert_eq!(problems(None, &old), (vec![Problem::Unindexed { keys }], 0));
        let mixed = [obj("h.jpg", 3, 900), obj("h.png", 3, 5)];
        assert_eq!(problems(None, &mixed), (vec![], 2));
    }

    #[test]
    fn a_row_with_its_object_is_fine_and_other_copies_are_extra_when_old() {
        let r = row("h.jpg", 3);
        assert_eq!(problems(Some(&r), &[obj("h.jpg", 3, 900)]), (vec![], 0));
        let objects = [obj("h.png", 3, 900), obj("h.jpg", 3, 800), obj("h", 3, 1)];
        let extras = vec!["h.png".to_owned()];
        assert_eq!(
            problems(Some(&r), &objects),
            (
                vec![Problem::ExtraCopies {
                    key: "h.jpg".into(),
                    extras
                }],
                1
            )
        );
    }

    #[test]
    fn a_missing_object_is_repointed_to_a_copy_of_the_right_size() {
        let r = row("h.png", 3);
        let objects = [obj("h.bin", 9, 900), obj("h.jpg", 3, 800), obj("h", 3, 700)];
        let want = Problem::WrongKey {
            key: "h.png".into(),
            target: "h.jpg".into(),
            extras: vec!["h.bin".into(), "h".into()],
        };
        assert_eq!(problems(Some(&r), &objects), (vec![want], 0));
        let odd = [obj("h.bin", 9, 900), obj("h.gz", 8, 800)];
        let (found, _) = problems(Some(&r), &odd);
        assert!(
            matches!(&found[..], [Problem::WrongKey { target, .. }] if target == "h.bin"),
            "{found:?}"
        );
    }

    #[test]
    fn no_object_at_all_is_missing_but_a_recent_copy_is_left_alone() {
        let r = row("h.jpg", 3);
        let missing = Problem::MissingObject {
            key: "h.jpg".into(),
        };
        assert_eq!(problems(Some(&r), &[]), (vec![missing], 0));
        assert_eq!(problems(Some(&r), &[obj("h.png", 3, 1)]), (vec![], 1));
    }

    #[test]
    fn sizes_are_compared_with_the_object_the_row_names() {
        let r = row("h.jpg", 3);
        let want = Problem::SizeMismatch {
            key: "h.jpg".into(),
            row: 3,
            object: 4,
        };
        assert_eq!(problems(Some(&r), &[obj("h.jpg", 4, 900)]), (vec![want], 0));
    }
}
