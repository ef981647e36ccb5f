//! Ignore patterns (a small gitignore-like dialect over `globset`): a pattern
//! without `/` matches a file or directory name at any depth, one with `/`
//! matches the path relative to the watched root, and a trailing `/` limits
//! it to directories. An ignored directory is neither watched nor scanned.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Compiled ignore patterns.
#[derive(Debug, Clone)]
pub struct IgnoreSet {
    names: GlobSet,
    dir_names: GlobSet,
    paths: GlobSet,
    dir_paths: GlobSet,
}

impl IgnoreSet {
    /// Ignore nothing.
    pub fn empty() -> Self {
        Self {
            names: GlobSet::empty(),
            dir_names: GlobSet::empty(),
            paths: GlobSet::empty(),
            dir_paths: GlobSet::empty(),
        }
    }

    /// Compile `patterns`; the error lists every bad pattern, one line each.
    pub fn new(patterns: &[String]) -> Result<Self, Vec<String>> {
        let mut sets: [GlobSetBuilder; 4] = std::array::from_fn(|_| GlobSetBuilder::new());
        let mut problems = Vec::new();
        for raw in patterns {
            let (pat, dir_only) = match raw.strip_suffix('/') {
                Some(p) => (p, true),
                None => (raw.as_str(), false),
            };
            let anchored = pat.contains('/');
            let pat = pat.trim_start_matches('/');
            if pat.is_empty() {
                problems.push(format!("ignore {raw:?}: empty pattern"));
                continue;
            }
            match GlobBuilder::new(pat)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
            {
                Ok(glob) => {
                    let idx = usize::from(anchored) * 2 + usize::from(dir_only);
                    sets[idx].add(glob);
                }
                Err(e) => problems.push(format!("ignore {raw:?}: {}", e.kind())),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let [names, dir_names, paths, dir_paths] =
            sets.map(|b| b.build().unwrap_or_else(|_| GlobSet::empty()));
        Ok(Self {
            names,
            dir_names,
            paths,
            dir_paths,
        })
    }

    /// Is the entry at `rel` (relative to its watched root) ignored?
    pub fn is_ignored(&self, rel: &Path, is_dir: bool) -> bool {
        let Some(name) = rel.file_name() else {
            return false;
        };
        if self.names.is_match(name) || self.paths.is_match(rel) {
            return true;
        }
        is_dir && (self.dir_names.is_match(name) || self.dir_paths.is_match(rel))
    }

    /// Is anything on the way from the root to `rel` ignored (the entry
    /// itself as a file, its parents as directories)?
    pub fn is_ignored_path(&self, rel: &Path, is_dir: bool) -> bool {
        let mut parent = rel.parent();
        while let Some(p) = parent {
            if p.as_os_str().is_empty() {
                break;
            }
            if self.is_ignored(p, true) {
                return true;
            }
            parent = p.parent();
        }
        self.is_ignored(rel, is_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_IGNORE;

    fn set(p: &[&str]) -> IgnoreSet {
        IgnoreSet::new(&p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).expect("valid")
    }

    #[test]
    fn defaults_catch_temp_and_partial_files() {
        let s = set(DEFAULT_IGNORE);
        for f in [
            "a/b/movie.mkv.part",
            "x.tmp",
            ".notes.txt.swp",
            "big.iso.crdownload",
            "~$report.docx",
            "file.txt~",
            ".#emacs-lock",
            "dir/.~lock.sheet.ods#",
        ] {
            assert!(s.is_ignored(Path::new(f), false), "{f}");
        }
        for f in [
            "photo.jpg",
            "a/partial.jpg",
            "tmp/x.png",
            ".hidden.txt",
            "notes.swp.txt",
        ] {
            assert!(!s.is_ignored(Path::new(f), false), "{f}");
        }
        assert!(s.is_ignored(Path::new("src/.git"), true));
        assert!(!s.is_ignored(Path::new("src/.git"), false));
        assert!(s.is_ignored_path(Path::new("repo/.git/objects/ab"), false));
    }

    #[test]
    fn slash_patterns_are_anchored_to_the_root() {
        let s = set(&["build/*.o", "/cache/"]);
        assert!(s.is_ignored(Path::new("build/x.o"), false));
        assert!(!s.is_ignored(Path::new("sub/build/x.o"), false));
        assert!(!s.is_ignored(Path::new("build/sub/x.o"), false));
        assert!(s.is_ignored(Path::new("cache"), true));
        assert!(!s.is_ignored(Path::new("a/cache"), true));
    }

    #[test]
    fn bad_patterns_are_all_reported() {
        let e = IgnoreSet::new(&["[".into(), "ok".into(), "/".into()]).expect_err("bad");
        assert_eq!(e.len(), 2, "{e:?}");
    }
}
